"""Queries on launches, their batch plan and their delivery records.

A launch is planned as batches of subscriber-id ranges in the same transaction that
records it (the outbox). Workers claim batches with a lease; the audience of a batch is
read in keyset pages and anyone who already has a delivery record for the launch is
skipped, so a batch taken again after a crash resumes where its records end.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection

from pushcamp.domain.launches import slot
from pushcamp.domain.local_time import parse_wall_time, send_groups
from pushcamp.store import statistics
from pushcamp.store.models import (
    Delivery,
    Event,
    IdempotencyKey,
    Launch,
    LaunchBatch,
    Partner,
    Subscriber,
)

BATCH_PENDING = "pending"
BATCH_CLAIMED = "claimed"
BATCH_DONE = "done"

# A batch spans at least MIN_BATCH_SPAN ids, and a launch has at most MAX_BATCHES batches,
# so the plan is written in milliseconds whatever the audience size. Between the two, a
# launch aims at TARGET_BATCHES batches (its workers send side by side, and its progress
# moves in steps of a sixteenth) of at most MAX_BATCH_SPAN ids: each batch costs a claim,
# a read of its context and a finish whatever its size, and batches of 500 ids made
# these about a tenth of a launch's CPU (docs/performance.md).
MIN_BATCH_SPAN = 500
MAX_BATCH_SPAN = 5000
TARGET_BATCHES = 16
MAX_BATCHES = 4000


def batch_span(ids: int) -> int:
    """The ids each batch of a range of ``ids`` ids spans."""
    aimed = min(MAX_BATCH_SPAN, -(-ids // TARGET_BATCHES))
    return max(MIN_BATCH_SPAN, -(-ids // MAX_BATCHES), aimed)


@dataclass(frozen=True, slots=True)
class LaunchRow:
    id: int
    partner_id: str
    campaign_id: int
    once: bool
    status: str
    request: dict[str, Any]
    topic: str
    batches_total: int
    batches_done: int
    paused_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Where the service worker reports events (None: recorded before it was stored).
    events_url: str | None
    # Scheduling and throttling (0010): None when not used.
    not_before: datetime | None = None
    max_per_minute: int | None = None


_LAUNCH_COLUMNS = (
    Launch.id,
    Launch.partner_id,
    Launch.campaign_id,
    Launch.once,
    Launch.status,
    Launch.request,
    Launch.topic,
    Launch.batches_total,
    Launch.batches_done,
    Launch.paused_reason,
    Launch.created_at,
    Launch.started_at,
    Launch.finished_at,
    Launch.events_url,
    Launch.not_before,
    Launch.max_per_minute,
)


def insert_launch(
    conn: Connection,
    *,
    partner_id: str,
    campaign_id: int,
    once: bool,
    status: str,
    request: dict[str, Any],
    now: datetime,
    events_url: str | None = None,
    not_before: datetime | None = None,
    max_per_minute: int | None = None,
) -> int:
    """Insert a launch row; an ``is_all`` campaign's second launch violates
    ``uq_launches_once`` (IntegrityError), whatever the interleaving."""
    launch_id = conn.execute(
        insert(Launch)
        .values(
            partner_id=partner_id,
            campaign_id=campaign_id,
            once=once,
            status=status,
            request=request,
            topic="-",
            batches_total=0,
            batches_done=0,
            created_at=now,
            events_url=events_url,
            not_before=not_before,
            max_per_minute=max_per_minute,
        )
        .returning(Launch.id)
    ).scalar_one()
    return int(launch_id)


def plan_batches(conn: Connection, launch_id: int, partner_id: str) -> int:
    """Write the launch's batch plan: ranges of the partner's current subscriber ids.
    Returns the number of batches (0: nobody to send to)."""
    lo, hi = conn.execute(
        select(func.min(Subscriber.id), func.max(Subscriber.id)).where(
            Subscriber.partner_id == partner_id, Subscriber.active.is_(True)
        )
    ).one()
    if lo is None:
        return 0
    span = batch_span(hi - lo + 1)
    rows = [
        {
            "launch_id": launch_id,
            "lo": start,
            "hi": min(start + span - 1, hi),
            "status": BATCH_PENDING,
        }
        for start in range(lo, hi + 1, span)
    ]
    conn.execute(insert(LaunchBatch), rows)
    return len(rows)


def set_batches_total(conn: Connection, launch_id: int, batches: int) -> None:
    conn.execute(update(Launch).where(Launch.id == launch_id).values(batches_total=batches))


def set_plan(conn: Connection, launch_id: int, topic: str, batches: int) -> None:
    conn.execute(
        update(Launch).where(Launch.id == launch_id).values(topic=topic, batches_total=batches)
    )


# Built once: SQLAlchemy reuses its compiled form as it is, whereas a statement built per
# call is matched to the cached one column by column first (about 0.4 ms a call, more
# than the query itself; the engine reads the launch once per page).
_GET_LAUNCH = select(*_LAUNCH_COLUMNS).where(Launch.id == bindparam("launch_id"))


def get_launch(conn: Connection, launch_id: int) -> LaunchRow | None:
    row = conn.execute(_GET_LAUNCH, {"launch_id": launch_id}).one_or_none()
    return LaunchRow(**row._mapping) if row else None


_LAUNCH_STATUS = select(Launch.status).where(Launch.id == bindparam("launch_id"))


def launch_status(conn: Connection, launch_id: int) -> str | None:
    """The launch's status alone (None: no such launch), for the engine's checks between
    pages, which need nothing else of the row."""
    found = conn.execute(_LAUNCH_STATUS, {"launch_id": launch_id}).first()
    return None if found is None else str(found[0])


def latest_launch_id(conn: Connection, campaign_id: int) -> int | None:
    found = conn.execute(
        select(Launch.id).where(Launch.campaign_id == campaign_id).order_by(Launch.id.desc())
    ).first()
    return None if found is None else int(found[0])


def launches_of_campaign(conn: Connection, partner_id: str, campaign_id: int) -> list[LaunchRow]:
    rows = conn.execute(
        select(*_LAUNCH_COLUMNS)
        .where(Launch.partner_id == partner_id, Launch.campaign_id == campaign_id)
        .order_by(Launch.id)
    ).all()
    return [LaunchRow(**r._mapping) for r in rows]


def set_status(
    conn: Connection,
    launch_id: int,
    status: str,
    *,
    only_from: Iterable[str] | None = None,
    now: datetime | None = None,
    reason: str | None = None,
    finished: bool = False,
    started: bool = False,
) -> bool:
    values: dict[str, Any] = {"status": status}
    if finished:
        values["finished_at"] = now
    if started:
        values["started_at"] = func.coalesce(Launch.started_at, now)
    if reason is not None or status != "Paused":
        values["paused_reason"] = reason
    stmt = update(Launch).where(Launch.id == launch_id)
    if only_from is not None:
        stmt = stmt.where(Launch.status.in_(list(only_from)))
    return conn.execute(stmt.values(**values)).rowcount == 1


def stop_campaign_launches(
    conn: Connection, partner_id: str, campaign_id: int, live: Sequence[str], now: datetime
) -> int:
    """Stop every launch of the campaign that has not ended (campaign deleted)."""
    return conn.execute(
        update(Launch)
        .where(
            Launch.partner_id == partner_id,
            Launch.campaign_id == campaign_id,
            Launch.status.in_(list(live)),
        )
        .values(status="Stopped", finished_at=now)
    ).rowcount


# --- scheduling and throttling --------------------------------------------------------


def due_launches(
    conn: Connection, scheduled: str, now: datetime, limit: int = 20
) -> list[tuple[int, str, int]]:
    """Scheduled launches whose time has come, ``(id, partner_id, campaign_id)``, oldest
    first, locked (PostgreSQL: rows another runner is starting are skipped)."""
    stmt = (
        select(Launch.id, Launch.partner_id, Launch.campaign_id)
        .where(Launch.status == scheduled, Launch.not_before <= now)
        .order_by(Launch.not_before, Launch.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [(int(r[0]), str(r[1]), int(r[2])) for r in conn.execute(stmt).all()]


def take_send_slot(
    conn: Connection, launch_id: int, count: int, now: datetime
) -> tuple[datetime, datetime] | None:
    """Reserve the launch's next send slot for ``count`` messages: the launch row is
    locked (PostgreSQL ``FOR UPDATE``; SQLite's write lock), its ``next_send_at`` read and
    moved to the slot's end, so two workers never get overlapping slots. ``(start,
    end)``, or None when the launch is not throttled."""
    stmt = select(Launch.max_per_minute, Launch.next_send_at).where(Launch.id == launch_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).one_or_none()
    if row is None or row[0] is None:
        return None
    start, end = slot(row[1], now, count, int(row[0]))
    conn.execute(update(Launch).where(Launch.id == launch_id).values(next_send_at=end))
    return start, end


# --- local time and deferred sends ----------------------------------------------------


def batch_due(now: datetime) -> Any:
    """The condition a batch may be claimed (or published) under at ``now``: it has no
    ``not_before`` or it has passed (local-time batches, deferred sends)."""
    return or_(LaunchBatch.not_before.is_(None), LaunchBatch.not_before <= now)


def zone_ranges(conn: Connection, partner_id: str) -> list[tuple[str | None, int, int]]:
    """The partner's active subscribers by stored time zone: ``(timezone, min id, max
    id)``, NULL zones as None (one grouped scan; a local-time plan is made from it)."""
    rows = conn.execute(
        select(Subscriber.timezone, func.min(Subscriber.id), func.max(Subscriber.id))
        .where(Subscriber.partner_id == partner_id, Subscriber.active.is_(True))
        .group_by(Subscriber.timezone)
    ).all()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


def plan_local_batches(conn: Connection, launch_id: int, groups: Sequence[LocalGroup]) -> int:
    """Write a local-time launch's plan: for each group of zones sharing one send
    instant, batches over the group's id range with that ``not_before``, its window end
    and its zone filter. Returns the number of batches."""
    rows: list[dict[str, Any]] = []
    per_group = max(1, MAX_BATCHES // max(1, len(groups)))
    for g in groups:
        span = max(MIN_BATCH_SPAN, -(-(g.hi - g.lo + 1) // per_group))
        for start in range(g.lo, g.hi + 1, span):
            rows.append(
                {
                    "launch_id": launch_id,
                    "lo": start,
                    "hi": min(start + span - 1, g.hi),
                    "status": BATCH_PENDING,
                    "not_before": g.not_before,
                    "send_until": g.send_until,
                    "subset": g.subset,
                }
            )
    if rows:
        conn.execute(insert(LaunchBatch), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class LocalGroup:
    """The subscribers of a local-time launch who get it at one instant."""

    not_before: datetime
    send_until: datetime
    subset: dict[str, Any]
    lo: int
    hi: int


def plan_for(conn: Connection, launch_id: int, partner_id: str, request: Any, now: datetime) -> int:
    """The launch's batch plan when it starts (``request``: its LaunchRequest): by id
    ranges (:func:`plan_batches`), or, with ``send_at_local``, one group of batches per
    send instant (docs/delivery.md, "Local-time launches"). Returns the batch count."""
    wall = getattr(request, "send_at_local", None)
    if wall is None:
        return plan_batches(conn, launch_id, partner_id)
    minutes = parse_wall_time(wall)
    assert minutes is not None
    window = timedelta(minutes=request.send_at_local_window_minutes or 60)
    default = conn.execute(
        select(Partner.default_timezone).where(Partner.id == partner_id)
    ).scalar_one_or_none()
    ranges = zone_ranges(conn, partner_id)
    if not ranges:
        return 0
    default_at, others = send_groups(now, minutes, [z for z, _, _ in ranges], default)
    bounds = {z: (lo, hi) for z, lo, hi in ranges}
    listed = [name for names in others.values() for name in names]
    groups: list[LocalGroup] = []
    for at, names in sorted(others.items()):
        groups.append(
            LocalGroup(
                at,
                at + window,
                {"tz_in": sorted(names)},
                min(bounds[n][0] for n in names),
                max(bounds[n][1] for n in names),
            )
        )
    rest = [b for z, b in bounds.items() if z is None or z not in set(listed)]
    if rest:
        groups.append(
            LocalGroup(
                default_at,
                default_at + window,
                {"tz_not_in": sorted(listed)},
                min(lo for lo, _ in rest),
                max(hi for _, hi in rest),
            )
        )
    return plan_local_batches(conn, launch_id, groups)


def add_deferred_batches(
    conn: Connection, launch_id: int, deferred: dict[datetime, list[int]]
) -> int:
    """Batches for subscribers held back by silent hours (mode ``defer``): one per
    instant, holding exactly those ids, not claimed before it; counted in the launch's
    ``batches_total``. Written in the transaction that marks their batch done, so a batch
    taken again after a crash decides again and nobody is deferred twice."""
    rows = [
        {
            "launch_id": launch_id,
            "lo": min(ids),
            "hi": max(ids),
            "status": BATCH_PENDING,
            "not_before": moment,
            "subset": {"ids": sorted(ids)},
        }
        for moment, ids in sorted(deferred.items())
        if ids
    ]
    if rows:
        conn.execute(insert(LaunchBatch), rows)
        conn.execute(
            update(Launch)
            .where(Launch.id == launch_id)
            .values(batches_total=Launch.batches_total + len(rows))
        )
    return len(rows)


def _subset_filter(subset: dict[str, Any] | None) -> Any:
    """The SQL condition of a batch's subset (None: everyone in its range)."""
    if not subset:
        return None
    s = Subscriber
    if "ids" in subset:
        return s.id.in_([int(i) for i in subset["ids"]])
    if "tz_in" in subset:
        return s.timezone.in_(list(subset["tz_in"]))
    # The default zone's group: zones unknown or not named by another group.
    others = list(subset.get("tz_not_in") or [])
    return or_(s.timezone.is_(None), s.timezone.not_in(others)) if others else true()


# --- claiming ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    launch_id: int
    lo: int
    hi: int
    # Local-time batches and deferred sends (0013): None when not used.
    not_before: datetime | None = None
    send_until: datetime | None = None
    subset: dict[str, Any] | None = None


def claim_batch(
    conn: Connection, worker: str, now: datetime, lease: timedelta, runnable: Sequence[str]
) -> BatchRow | None:
    """Claim the oldest batch that is pending, or claimed under a lease that ran out,
    of a launch in a runnable state. PostgreSQL skips rows other workers hold locked."""
    candidates = (
        select(LaunchBatch.id)
        .join(Launch, Launch.id == LaunchBatch.launch_id)
        .where(
            Launch.status.in_(list(runnable)),
            or_(
                LaunchBatch.status == BATCH_PENDING,
                and_(LaunchBatch.status == BATCH_CLAIMED, LaunchBatch.claimed_until < now),
            ),
            batch_due(now),
        )
        .order_by(LaunchBatch.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(of=LaunchBatch, skip_locked=True)
    batch_id = conn.execute(candidates).scalar_one_or_none()
    if batch_id is None:
        return None
    return _take(conn, int(batch_id), worker, now, lease)


def claim_batch_by_id(
    conn: Connection,
    batch_id: int,
    worker: str,
    now: datetime,
    lease: timedelta,
    runnable: Sequence[str],
) -> BatchRow | None:
    """Claim this batch (the Celery runner's task names it) if it is pending, or claimed
    under a lease that ran out, and its launch is runnable; None otherwise (done, held
    by a live worker, its launch paused or stopped): a task delivered twice is harmless."""
    stmt = (
        select(LaunchBatch.id)
        .join(Launch, Launch.id == LaunchBatch.launch_id)
        .where(
            LaunchBatch.id == batch_id,
            Launch.status.in_(list(runnable)),
            batch_due(now),
            or_(
                LaunchBatch.status == BATCH_PENDING,
                and_(LaunchBatch.status == BATCH_CLAIMED, LaunchBatch.claimed_until < now),
            ),
        )
    )
    if conn.dialect.name == "postgresql":
        # Wait for the row rather than skip it: the outbox publishes a batch's task while
        # its transaction still holds the row (FOR UPDATE SKIP LOCKED, released at its
        # commit a moment later), so a task can arrive before the row is free. Skipping
        # it dropped the task and left the batch to the republish timer (minutes).
        stmt = stmt.with_for_update(of=LaunchBatch)
    if conn.execute(stmt).scalar_one_or_none() is None:
        return None
    return _take(conn, batch_id, worker, now, lease)


def _take(
    conn: Connection, batch_id: int, worker: str, now: datetime, lease: timedelta
) -> BatchRow:
    row = conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.id == batch_id)
        .values(status=BATCH_CLAIMED, claimed_by=worker, claimed_until=now + lease)
        .returning(
            LaunchBatch.id,
            LaunchBatch.launch_id,
            LaunchBatch.lo,
            LaunchBatch.hi,
            LaunchBatch.not_before,
            LaunchBatch.send_until,
            LaunchBatch.subset,
        )
    ).one()
    return BatchRow(*row)


def extend_lease(conn: Connection, batch_id: int, worker: str, until: datetime) -> bool:
    return (
        conn.execute(
            update(LaunchBatch)
            .where(LaunchBatch.id == batch_id, LaunchBatch.claimed_by == worker)
            .values(claimed_until=until)
        ).rowcount
        == 1
    )


def release_batch(conn: Connection, batch_id: int, worker: str) -> None:
    """Give a claimed batch back (its launch paused or the worker stops); the outbox
    hands it to the broker again (Celery runner)."""
    conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.id == batch_id, LaunchBatch.claimed_by == worker)
        .values(status=BATCH_PENDING, claimed_by=None, claimed_until=None, published_at=None)
    )


def release_all(conn: Connection) -> int:
    """Give back every claimed batch (embedded mode at start-up: no other worker exists)."""
    return conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.status == BATCH_CLAIMED)
        .values(status=BATCH_PENDING, claimed_by=None, claimed_until=None)
    ).rowcount


def finish_batch(conn: Connection, batch: BatchRow, worker: str) -> bool:
    """Mark the batch done and count it on its launch; True if that was the launch's
    last batch."""
    done = conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.id == batch.id, LaunchBatch.status != BATCH_DONE)
        .values(status=BATCH_DONE, claimed_by=worker, claimed_until=None)
    ).rowcount
    if done:
        conn.execute(
            update(Launch)
            .where(Launch.id == batch.launch_id)
            .values(batches_done=Launch.batches_done + 1)
        )
    remaining = conn.execute(
        select(func.count())
        .select_from(LaunchBatch)
        .where(LaunchBatch.launch_id == batch.launch_id, LaunchBatch.status != BATCH_DONE)
    ).scalar_one()
    return remaining == 0


# --- the audience -----------------------------------------------------------------------


# Not frozen: a frozen dataclass sets each field through object.__setattr__, four times
# the cost of a plain one; 500 are made per page, and nothing changes them.
@dataclass(slots=True)
class Recipient:
    id: int
    endpoint: str
    p256dh: str
    auth: str
    timezone: str | None
    device: str | None
    # Accepted a push from the partner before, or imported by the operator: its 401/403
    # says the sender is wrong (domain.launches.counts_towards_pause).
    vouched: bool
    # For the per-subscriber content (domain.launches.content_for).
    language: str | None = None
    attributes: dict[str, Any] | None = None


_BUILTIN_COLUMNS = {
    "d_wp_browser": Subscriber.browser,
    "d_wp_os": Subscriber.os,
    "d_wp_device": Subscriber.device,
}


def audience_page(
    conn: Connection,
    *,
    partner_id: str,
    launch_id: int,
    lo: int,
    hi: int,
    after: int,
    limit: int,
    language: str | None,
    target: tuple[str, Sequence[str]] | None,
    engaged_since: datetime | None,
    subset: dict[str, Any] | None = None,
) -> list[Recipient]:
    """The next page (ids > ``after``) of the batch's audience that has no delivery
    record for this launch yet: active, in the language (None: any), matching the
    target, engaged since ``engaged_since`` (None: engagement not required)."""
    s = Subscriber
    stmt = (
        select(
            s.id,
            s.endpoint,
            s.p256dh,
            s.auth,
            s.timezone,
            s.device,
            or_(s.first_accepted_at.is_not(None), s.imported_at.is_not(None)),
            s.language,
            # As text, decoded below only when not empty: most subscribers have no
            # attributes, and decoding every row's "{}" was a third of the page's CPU.
            cast(s.attributes, Text),
        )
        .where(
            s.partner_id == partner_id,
            s.active.is_(True),
            s.id >= max(lo, after + 1),
            s.id <= hi,
            ~exists().where(Delivery.launch_id == launch_id, Delivery.subscriber_id == s.id),
        )
        .order_by(s.id)
        .limit(limit)
    )
    if language is not None:
        stmt = stmt.where(s.language == language)
    if target is not None:
        attribute, values = target
        column = _BUILTIN_COLUMNS.get(attribute)
        if column is None:
            column = s.attributes[attribute].as_string()
        stmt = stmt.where(column.in_(list(values)))
    if engaged_since is not None:
        stmt = stmt.where(s.last_engaged_at >= engaged_since)
    if (only := _subset_filter(subset)) is not None:
        stmt = stmt.where(only)
    return [
        Recipient(
            sid,
            endpoint,
            p256dh,
            auth,
            timezone,
            device,
            bool(vouched),
            language,
            {} if attributes == "{}" else json.loads(attributes),
        )
        for sid, endpoint, p256dh, auth, timezone, device, vouched, language, attributes in (
            conn.execute(stmt).all()
        )
    ]


def recent_push_counts(
    conn: Connection, subscriber_ids: Sequence[int], since: datetime
) -> dict[int, int]:
    """Pushes sent to each of these subscribers since ``since`` (the frequency cap)."""
    if not subscriber_ids:
        return {}
    rows = conn.execute(
        select(Delivery.subscriber_id, func.count())
        .where(
            Delivery.subscriber_id.in_(list(subscriber_ids)),
            Delivery.created_at >= since,
            Delivery.state == "sent",
        )
        .group_by(Delivery.subscriber_id)
    ).all()
    return {int(r[0]): int(r[1]) for r in rows}


# --- delivery records -------------------------------------------------------------------
#
# One record per push, written in groups of up to 500: the engine's hottest statements.
# They are plain SQL prepared once per dialect and sent with the driver's own parameter
# handling (``exec_driver_sql``; SQLAlchemy still maps errors and drops dead
# connections). Through Core, every row went through the compiled statement's per-row
# parameter processing, and on PostgreSQL the multi-row statement (thousands of
# placeholders, new text for each group size) was parsed again by psycopg at every flush.

_RECORD_COLUMNS = (
    "launch_id",
    "subscriber_id",
    "partner_id",
    "state",
    "reason",
    "status_code",
    "device",
    "created_at",
    "variant",
)
_RECORD_LIST = ", ".join(_RECORD_COLUMNS)
_RECORD_KEY = "(launch_id, subscriber_id)"

# PostgreSQL: one statement whatever the group's size, each column one array in binary
# (%b: no text quoting per element). It answers with the rows it did not insert (a
# record already there: a batch taken again), nearly always none, rather than with every
# row it did.
_PG_RECORD = (
    f"WITH given ({_RECORD_LIST}) AS (SELECT * FROM unnest(%b::bigint[], %b::bigint[],"
    " %b::varchar[], %b::varchar[], %b::varchar[], %b::integer[], %b::varchar[],"
    " %b::timestamptz[], %b::smallint[])),"
    f" new AS (INSERT INTO deliveries ({_RECORD_LIST}) SELECT * FROM given"
    f" ON CONFLICT {_RECORD_KEY} DO NOTHING RETURNING launch_id, subscriber_id)"
    " SELECT launch_id, subscriber_id FROM given"
    " EXCEPT ALL SELECT launch_id, subscriber_id FROM new"
)

# SQLite: multi-row VALUES answering with the keys inserted, at most this many rows a
# statement (9 columns: under the 999 parameters an SQLite older than 3.32 allows).
_SQLITE_RECORD_ROWS = 100


@functools.lru_cache(maxsize=_SQLITE_RECORD_ROWS)
def _sqlite_record_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO deliveries ({_RECORD_LIST}) VALUES {values}"
        f" ON CONFLICT {_RECORD_KEY} DO NOTHING RETURNING launch_id, subscriber_id"
    )


def sqlite_datetime(moment: datetime) -> str:
    """A datetime as SQLAlchemy's DATETIME stores it in SQLite (the wall time, the zone
    dropped, microseconds always written): other queries read it back and compare it
    as text."""
    return moment.isoformat(" ", "microseconds")[:26]


def _insert_records(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert the records that do not exist yet; the rows actually inserted (of a key
    given twice, the first)."""
    if conn.dialect.name == "postgresql":
        columns = tuple([r[name] for r in rows] for name in _RECORD_COLUMNS)
        skipped = Counter((lid, sid) for lid, sid in conn.exec_driver_sql(_PG_RECORD, columns))
        if not skipped:
            return list(rows)
        kept = []
        for r in reversed(rows):  # a key given twice: the later one is the one skipped
            key = (r["launch_id"], r["subscriber_id"])
            if skipped[key]:
                skipped[key] -= 1
            else:
                kept.append(r)
        return kept[::-1]
    inserted: set[tuple[int, int]] = set()
    for at in range(0, len(rows), _SQLITE_RECORD_ROWS):
        chunk = rows[at : at + _SQLITE_RECORD_ROWS]
        params: list[Any] = []
        for r in chunk:
            params += (
                r["launch_id"],
                r["subscriber_id"],
                r["partner_id"],
                r["state"],
                r["reason"],
                r["status_code"],
                r["device"],
                sqlite_datetime(r["created_at"]),
                r["variant"],
            )
        result = conn.exec_driver_sql(_sqlite_record_sql(len(chunk)), tuple(params))
        inserted.update((lid, sid) for lid, sid in result)
    if len(inserted) == len(rows):
        return list(rows)
    kept = []
    for r in rows:
        key = (r["launch_id"], r["subscriber_id"])
        if key in inserted:
            inserted.discard(key)  # a key given twice: the first one was inserted
            kept.append(r)
    return kept


def record_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert delivery records; one that already exists (a batch taken again) is kept.
    The records actually inserted are counted in the statistics counters in the same
    transaction (store/statistics.py). Each row has every column of
    ``_RECORD_COLUMNS``, ``created_at`` in UTC."""
    if rows:
        statistics.count_deliveries(conn, _insert_records(conn, rows))


# PostgreSQL: the ids as one array (an IN list of hundreds of placeholders is new text,
# parsed again, for every length); SQLite: as one JSON text, read by json_each.
_PG_ACCEPTED = (
    "UPDATE subscribers SET first_accepted_at = %s"
    " WHERE id = ANY(%s::bigint[]) AND first_accepted_at IS NULL"
)
_SQLITE_ACCEPTED = (
    "UPDATE subscribers SET first_accepted_at = ?"
    " WHERE id IN (SELECT value FROM json_each(?)) AND first_accepted_at IS NULL"
)


def mark_accepted(conn: Connection, subscriber_ids: Sequence[int], now: datetime) -> None:
    """Note that these subscriptions accepted a push (the first time only): from now on
    they are vouched for. Written with the delivery records, in the same transaction."""
    if not subscriber_ids:
        return
    ids = [int(i) for i in subscriber_ids]
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_ACCEPTED, (now, ids))
    else:
        conn.exec_driver_sql(_SQLITE_ACCEPTED, (sqlite_datetime(now), json.dumps(ids)))


def live_claims(conn: Connection, launch_id: int, now: datetime) -> int:
    """Batches of the launch a worker still holds under a lease that has not run out
    (it is still recording the answers of messages in flight)."""
    return conn.execute(
        select(func.count())
        .select_from(LaunchBatch)
        .where(
            LaunchBatch.launch_id == launch_id,
            LaunchBatch.status == BATCH_CLAIMED,
            LaunchBatch.claimed_until >= now,
        )
    ).scalar_one()


def reopen_sender_refused(conn: Connection, launch_id: int, reason: str) -> int:
    """For a resume: remove the launch's provisional records of ``reason`` (refusals that
    said the sender was wrong) and make the batches holding them pending again, so those
    subscribers are tried again while everyone else with a record is skipped. Returns
    how many records were removed."""
    refused = exists().where(
        Delivery.launch_id == launch_id,
        Delivery.reason == reason,
        Delivery.subscriber_id >= LaunchBatch.lo,
        Delivery.subscriber_id <= LaunchBatch.hi,
    )
    conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.launch_id == launch_id, LaunchBatch.status == BATCH_DONE, refused)
        .values(status=BATCH_PENDING, claimed_by=None, claimed_until=None)
    )
    removed_rows = conn.execute(
        delete(Delivery)
        .where(Delivery.launch_id == launch_id, Delivery.reason == reason)
        .returning(
            Delivery.launch_id,
            Delivery.state,
            Delivery.reason,
            Delivery.device,
            Delivery.created_at,
            Delivery.variant,
        )
    ).all()
    # The statistics counters follow the records, in the same transaction.
    statistics.uncount_deliveries(conn, removed_rows)
    removed = len(removed_rows)
    done = (
        select(func.count())
        .select_from(LaunchBatch)
        .where(LaunchBatch.launch_id == launch_id, LaunchBatch.status == BATCH_DONE)
        .scalar_subquery()
    )
    conn.execute(update(Launch).where(Launch.id == launch_id).values(batches_done=done))
    return int(removed)


def settle_reason(conn: Connection, launch_id: int, provisional: str, final: str) -> None:
    """A launch that ended: its provisional drop records become final ones."""
    conn.execute(
        update(Delivery)
        .where(Delivery.launch_id == launch_id, Delivery.reason == provisional)
        .values(reason=final)
    )


def delivery_counts(conn: Connection, launch_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per launch: records by state and events by type (live counters)."""
    counts: dict[int, dict[str, int]] = {i: {} for i in launch_ids}
    if not launch_ids:
        return counts
    for launch_id, state, n in conn.execute(
        select(Delivery.launch_id, Delivery.state, func.count())
        .where(Delivery.launch_id.in_(list(launch_ids)))
        .group_by(Delivery.launch_id, Delivery.state)
    ).all():
        counts[int(launch_id)][state] = int(n)
    for launch_id, kind, n in conn.execute(
        select(Event.launch_id, Event.type, func.count())
        .where(Event.launch_id.in_(list(launch_ids)))
        .group_by(Event.launch_id, Event.type)
    ).all():
        counts[int(launch_id)][f"event:{kind}"] = int(n)
    return counts


# --- idempotency ------------------------------------------------------------------------


def find_idempotency(
    conn: Connection, partner_id: str, key: str, since: datetime
) -> tuple[str, dict[str, Any]] | None:
    row = conn.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.response).where(
            IdempotencyKey.partner_id == partner_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at >= since,
        )
    ).one_or_none()
    return None if row is None else (row[0], dict(row[1]))


def save_idempotency(
    conn: Connection,
    partner_id: str,
    key: str,
    fingerprint: str,
    response: dict[str, Any],
    now: datetime,
    expired_before: datetime,
) -> None:
    """Store the key, first removing the partner's expired keys (this one included, if
    it is being reused after its window), so they never pile up."""
    conn.execute(
        IdempotencyKey.__table__.delete().where(  # type: ignore[attr-defined]
            IdempotencyKey.partner_id == partner_id,
            IdempotencyKey.created_at < expired_before,
        )
    )
    conn.execute(
        insert(IdempotencyKey).values(
            partner_id=partner_id,
            key=key,
            fingerprint=fingerprint,
            response=response,
            created_at=now,
        )
    )
