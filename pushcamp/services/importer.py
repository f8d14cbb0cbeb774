"""Bulk import of subscriptions from JSON Lines (contract §3): one subscription object per
line, the subscribe call's fields without ``partner_id``, optionally ``last_engaged_at``.

The file is streamed: one line at a time is read (never more than
:data:`MAX_LINE_BYTES` of it), so memory stays flat whatever the file's size. A bad line
is reported with its number and skipped; the good ones are upserted in batches, each in
its own transaction.

How it behaves, so that callers can rely on it:

- **Order.** Every good line has the effect of upserting it alone, in file order: a
  batch is flushed early when an endpoint repeats within it (PostgreSQL's ``ON CONFLICT``
  refuses the same key twice in one statement, and merging the two lines here would
  duplicate the store's rules), so the later line wins exactly as a re-subscribe would.
- **Engagement.** A line's own ``last_engaged_at`` is stored (from 1970 to the import's
  clock; a few minutes ahead is taken as now, later is a bad line). A line without one leaves
  the subscriber unengaged (``NULL``, reached only by launches that include unengaged
  subscribers; an existing row keeps its stored time) unless ``engaged_at`` is given
  (``--engaged-now``), which stamps it on every such line. Unengaged is the default
  because an export from another system says nothing about recent activity, and
  guessing "engaged" would push to every stale browser at once.
- **Failures.** Batches are idempotent upserts committed in file order, so when the
  database fails the lines up to the last committed batch are in, and running the same
  import again is safe: it updates those rows, never duplicates them.
- **Re-activation.** An imported endpoint becomes active again even if it had been
  marked gone or unsubscribed (as a browser subscribing again would).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from pushcamp.domain.subscribers import NewSubscription, parse_subscription
from pushcamp.errors import DependencyUnavailable, InvalidRequest, NotFound
from pushcamp.store import Database
from pushcamp.store import partners as partner_q
from pushcamp.store import subscribers as q

# A subscription is well under 4 KiB (an endpoint of at most 2 KiB, two keys, 32 short
# attributes); a longer line is a wrong file or an attack, refused without holding it.
MAX_LINE_BYTES = 16 * 1024
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 100_000
# How many bad lines the summary keeps (the callback sees every one).
KEPT_BAD_LINES = 100
_REASON_MAX_CHARS = 300


class ImportInterrupted(DependencyUnavailable):
    """The database failed part-way: lines 1 to ``done_through`` are in, the rest are
    not (re-running the import is safe)."""

    def __init__(self, imported: int, done_through: int, cause: str):
        self.imported = imported
        self.done_through = done_through
        self.cause = cause
        done = f"lines 1 to {done_through:,} are done" if done_through else "no line is done"
        super().__init__(
            f"the database failed ({cause}); {done} ({imported:,} subscriptions committed), "
            "the rest are not. The import is idempotent: running it again is safe"
        )


@dataclass(frozen=True, slots=True)
class BadLine:
    """A refused line: its number in the file (1-based, blank lines counted) and why."""

    number: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import stands: bytes of input consumed and lines so far."""

    bytes_read: int
    lines: int
    good: int
    bad: int


@dataclass(slots=True)
class ImportSummary:
    """The outcome of an import. ``lines`` counts non-blank lines; every one of them is
    either imported or bad."""

    lines: int = 0
    imported: int = 0
    bad: int = 0
    blank: int = 0
    bytes_read: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)


class _DuplicateKey(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# Strict JSON: NaN/Infinity refused (Python accepts them by default), and an object that
# names a key twice too (which of the two would count is anybody's guess).
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates
)


def _printable(text: str) -> str:
    """A reason safe to print on a terminal: field names come from the file, and an
    escape sequence in one must not reach the operator's screen as one."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text[:_REASON_MAX_CHARS]


def parse_line(raw: bytes, allowed_hosts: frozenset[str], now: datetime) -> NewSubscription | str:
    """One line's subscription, or why it is refused; never raises, whatever ``raw`` is
    (the line without its line break). ``now`` bounds ``last_engaged_at``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start + 1})"
    try:
        data = _DECODER.decode(text)
    except _DuplicateKey as exc:
        return _printable(f"invalid JSON: key {exc.args[0]!r} appears twice")
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's limit on an int's digits
            return "invalid JSON: a number with too many digits"
        return _printable(f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        return "must be a JSON object"
    try:
        sub = parse_subscription(
            data, allowed_hosts=allowed_hosts, allow_last_engaged=True, now=now
        )
    except InvalidRequest as exc:
        return _printable(str(exc))
    return sub  # keys come back in canonical base64url from the validator


def iter_lines(
    source: IO[bytes], max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None, int]]:
    """``(number, line, bytes consumed)`` for each line of ``source``, the line without
    its ``\\n`` / ``\\r\\n``, or None when it is longer than ``max_bytes`` (the rest of
    such a line is read and dropped in pieces, never held whole)."""
    number = 0
    limit = max_bytes + 2  # room for "\r\n"
    readline = source.readline
    while True:
        chunk = readline(limit)
        if not chunk:
            return
        number += 1
        consumed = len(chunk)
        line: bytes | None
        if chunk.endswith(b"\n") or len(chunk) < limit:  # a whole line (the last may lack \n)
            body = chunk.removesuffix(b"\n").removesuffix(b"\r")
            line = body if len(body) <= max_bytes else None
        else:
            line = None
            while chunk and not chunk.endswith(b"\n"):
                chunk = readline(limit)
                consumed += len(chunk)
        yield number, line, consumed


def import_subscriptions(
    db: Database,
    partner_id: str,
    source: IO[bytes],
    *,
    engaged_at: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[ImportProgress], None] | None = None,
    on_bad_line: Callable[[BadLine], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportSummary:
    """Stream JSON Lines from ``source`` (a binary file object) into ``partner_id``'s
    subscribers; see the module docstring for the rules.

    ``engaged_at`` stamps lines that carry no ``last_engaged_at`` (None: they stay
    unengaged). ``on_progress`` is called after every batch (handed to the writer
    thread, which commits it while the next lines are parsed), ``on_bad_line`` for every
    refused line. Raises :class:`NotFound` for an unknown partner and
    :class:`ImportInterrupted` when the database fails part-way.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidRequest.of("batch_size", f"must be 1 to {MAX_BATCH_SIZE:,}")
    with db.read() as conn:
        if partner_q.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner {partner_id!r}")
    allowed_hosts = db.settings.allowed_push_hosts
    summary = ImportSummary()
    batch: dict[str, NewSubscription] = {}
    writer = _BatchWriter(db, partner_id, engaged_at, now)

    def flush(through_line: int) -> None:
        if batch:
            writer.submit(list(batch.values()), through_line)
            batch.clear()
        if on_progress is not None:
            good = summary.lines - summary.bad
            on_progress(ImportProgress(summary.bytes_read, summary.lines, good, summary.bad))

    number = 0
    try:
        for number, line, consumed in iter_lines(source):
            summary.bytes_read += consumed
            if line is None:
                result: NewSubscription | str = f"longer than {MAX_LINE_BYTES:,} bytes"
            elif not line.strip():
                summary.blank += 1
                continue
            else:
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]  # a UTF-8 byte-order mark some tools write
                result = parse_line(line, allowed_hosts, now())
            summary.lines += 1
            if isinstance(result, str):
                summary.bad += 1
                bad = BadLine(number, result)
                if len(summary.bad_lines) < KEPT_BAD_LINES:
                    summary.bad_lines.append(bad)
                if on_bad_line is not None:
                    on_bad_line(bad)
                continue
            if result.endpoint in batch:
                flush(number - 1)
            batch[result.endpoint] = result
            if len(batch) >= batch_size:
                flush(number)
        flush(number)
    except BaseException:
        writer.close(abort=True)
        raise
    writer.close()
    summary.imported = writer.imported
    return summary


class _BatchWriter:
    """Upserts batches in a thread of its own, one transaction each, in the order given,
    while the caller parses the next lines: the database's share of the work (the
    driver, SQLite's B-tree, or the PostgreSQL server on the other core) overlaps with
    the parsing. At most two batches wait, so memory stays bounded.

    The first failure stops it: later batches are dropped, and the caller learns of it
    at its next ``submit`` or at ``close``, as :class:`ImportInterrupted` naming the
    lines committed before it.
    """

    def __init__(
        self,
        db: Database,
        partner_id: str,
        engaged_at: datetime | None,
        now: Callable[[], datetime],
    ) -> None:
        self._db, self._partner_id, self._engaged_at, self._now = db, partner_id, engaged_at, now
        self._queue: queue.Queue[tuple[list[NewSubscription], int] | None] = queue.Queue(2)
        self._failure: BaseException | None = None
        self._aborted = False
        self.imported = 0  # subscriptions committed
        self.done_through = 0  # the file's lines up to here are committed or refused
        self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self._thread.start()

    def submit(self, subs: list[NewSubscription], through_line: int) -> None:
        self._raise_failure()
        self._queue.put((subs, through_line))

    def close(self, abort: bool = False) -> None:
        """Wait for the submitted batches and raise if one failed; with ``abort`` (the
        caller is failing), drop those not started and raise nothing."""
        self._aborted = abort
        self._queue.put(None)
        self._thread.join()
        if not abort:
            self._raise_failure()

    def _raise_failure(self) -> None:
        exc = self._failure
        if exc is None:
            return
        if isinstance(exc, DependencyUnavailable | SQLAlchemyError):
            cause = (
                str(exc.args[0]) if isinstance(exc, DependencyUnavailable) else type(exc).__name__
            )
            raise ImportInterrupted(self.imported, self.done_through, cause) from exc
        raise exc

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._failure is not None or self._aborted:
                continue  # drain, so that the caller never blocks on a full queue
            subs, through_line = item
            try:
                with self._db.write() as conn:
                    q.upsert_subscriptions(
                        conn, self._partner_id, subs, self._now(), self._engaged_at, imported=True
                    )
            except BaseException as exc:  # handed to the caller's thread
                self._failure = exc
                continue
            self.imported += len(subs)
            self.done_through = through_line


@dataclass(frozen=True, slots=True)
class SubscriberCounts:
    active: int
    inactive: int


def count_subscribers(db: Database, partner_id: str) -> SubscriberCounts:
    """The partner's active and inactive subscribers (NotFound for an unknown partner)."""
    with db.read() as conn:
        if partner_q.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner {partner_id!r}")
        total = q.count_subscribers(conn, partner_id, active_only=False)
        active = q.count_subscribers(conn, partner_id, active_only=True)
    return SubscriberCounts(active=active, inactive=total - active)
