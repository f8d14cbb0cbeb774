"""The async sender: many messages to many push services, over pooled connections.

HTTP: the sender's own HTTP/1.1 client (``_http.py``: asyncio protocol, httptools
parser), about a third of the CPU per request of aiohttp's ``ClientSession``, which had
been chosen over httpx (whose async client lost throughput as concurrency rose; HTTP/2
gave nothing back, push services answering every message with a tiny 201). A caller's
own aiohttp session is still used as given. The figures are in ``docs/performance.md``.

Shape (``_Stream``): at most ``max_pending`` messages in progress at once (messages
waiting for a retry included), so a stream of any length uses bounded memory. Each
push-service origin has ``per_host`` slots, held only while a request is on the wire —
never while encrypting or waiting to retry — so a slow host cannot hold slots another
host's messages could use, and a host that answers 429 is paused as a whole. A first
attempt that finds a free slot and an idle pooled connection is written at once and its
answer handled in a callback; one that finds no free slot waits for the next slot given
back, in turn. Only the rest — opening a connection, retrying, a paused host, a caller's
aiohttp session — takes a task, as :meth:`WebPushSender.send` does: a task and its
coroutines per message cost about a quarter of a message's CPU outside encryption.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

import aiohttp

from pushcamp.webpush._crypto import encrypt
from pushcamp.webpush._errors import (
    InvalidOptions,
    InvalidSubscription,
    InvalidVapid,
    PayloadTooLarge,
)
from pushcamp.webpush._http import HttpClient, Response, _Connection
from pushcamp.webpush._message import PushMessage, PushOptions, PushResult
from pushcamp.webpush._outcome import Outcome, Rejected, RetryAfter, TooLarge, classify
from pushcamp.webpush._retry import retry_delay
from pushcamp.webpush._subscription import Subscription
from pushcamp.webpush._vapid import Vapid

USER_AGENT = "pushcamp-webpush"
_DETAIL_LIMIT = 300  # characters of a failure's body kept for the caller


class _Queued:
    """A stream's first attempt waiting for a slot: handed the slot by :meth:`_Slots.give`
    and posted there and then, without a future or a callback scheduled on the loop.
    It answers ``done()`` and ``set_result()`` as a waiting future does."""

    __slots__ = ("post", "waiting")

    def __init__(self, post: Callable[[], None]) -> None:
        self.post = post
        self.waiting = True

    def done(self) -> bool:
        return not self.waiting

    def set_result(self, _: None) -> None:
        self.waiting = False
        # Let go of the callback first: it refers back to this waiter (a cycle that only
        # the garbage collector's rare full passes would free, with the message in it).
        post, self.post = self.post, _nothing
        post()

    def cancel(self) -> None:
        self.waiting = False
        self.post = _nothing


def _nothing() -> None:
    pass


class _Slots:
    """The requests one push service may have on the wire: one is taken at once when
    free (a stream's first attempts, no coroutine), or waited for in turn (a stream's
    queued first attempt; a future for retries and new connections); a slot given back
    goes to the longest waiter first."""

    __slots__ = ("free", "_waiters", "_giving", "_given_back")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None] | _Queued] = deque()
        # A queued attempt is posted inside give(), and may give its slot straight back
        # (no idle connection: a task connects): those are handed on by the outer give(),
        # in a loop, so a long queue is never a deep recursion.
        self._giving = False
        self._given_back = 0

    def try_take(self) -> bool:
        waiters = self._waiters
        while waiters and waiters[0].done():  # cancelled while waiting
            waiters.popleft()
        if self.free > 0 and not waiters:
            self.free -= 1
            return True
        return False

    def take_later(self) -> asyncio.Future[None]:
        """A future done when a slot is this caller's (cancel it to give up waiting)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def queue(self, waiter: _Queued) -> None:
        """``waiter.post()`` is called, holding a slot, by the ``give()`` that frees one
        (cancel it to give up waiting)."""
        self._waiters.append(waiter)

    async def take(self) -> None:
        if self.try_take():
            return
        waiter = self.take_later()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as it was cancelled: pass it on
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        if self._giving:  # called by a waiter posted below: handed on by that loop
            self._given_back += 1
            return
        self._giving = True
        self._given_back = 1
        try:
            while self._given_back:
                self._given_back -= 1
                self._hand_on()
        finally:
            self._giving = False

    def _hand_on(self) -> None:
        """One slot to the longest waiter still waiting, else back to the free ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the waiter
                return
        self.free += 1


@dataclass(slots=True)
class _Host:
    slots: _Slots
    not_before: float = 0.0  # loop time before which nothing is sent (after a 429)


MessageLike = PushMessage | tuple[Any, ...]
# A message ready to post: its body encrypted, its options and VAPID identity resolved.
Prepared = tuple[PushMessage, bytes, PushOptions, Vapid]
Messages = AsyncIterable[MessageLike] | Iterable[MessageLike]


class WebPushSender:
    """Sends Web Push messages; use as ``async with WebPushSender(vapid) as sender``.

    ``vapid`` signs every message that does not carry its own in its options.
    ``per_host``: requests in flight per push-service origin. ``max_pending``: messages
    in progress at once in :meth:`send_many`. ``timeout``: seconds for each request,
    connecting included. ``max_attempts``: tries per message for RetryAfter and
    Transient answers; ``backoff``/``max_backoff`` shape the waits between them and
    ``max_retry_after`` is the longest Retry-After honoured rather than given up on.
    ``sleep`` and ``rng`` are seams for tests.
    """

    def __init__(
        self,
        vapid: Vapid | None = None,
        *,
        per_host: int = 100,
        max_pending: int = 1000,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        default_options: PushOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if per_host < 1 or max_pending < 1 or max_attempts < 1 or timeout <= 0:
            raise ValueError("per_host, max_pending, max_attempts and timeout must be positive")
        self._vapid = vapid
        self._per_host = per_host
        self._max_pending = max_pending
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._default_options = default_options or PushOptions()
        self._session = session  # the caller's aiohttp session, used as given
        self._http: HttpClient | None = None  # ours otherwise (see _http.py for why)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._hosts: dict[str, _Host] = {}
        self._heads: dict[PushOptions, bytes] = {}  # header lines per options (own client)

    async def __aenter__(self) -> WebPushSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections (never a session the caller passed in)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(
        self,
        subscription: Subscription | Mapping[str, Any],
        payload: bytes | str,
        options: PushOptions | None = None,
    ) -> PushResult:
        """Send one message, retrying as configured, and return its result.

        Raises :class:`PayloadTooLarge`, :class:`InvalidSubscription` or
        :class:`InvalidVapid` before any request when the message cannot be built.
        """
        message = PushMessage(subscription, payload, options)  # type: ignore[arg-type]
        return await self._deliver(*self._prepare(message))

    async def send_many(self, messages: Messages) -> AsyncIterator[PushResult]:
        """Send a stream of ``(subscription, payload, options)`` and yield one
        :class:`PushResult` per message, in the order they finish.

        ``messages`` may be a sync or async iterable and is consumed lazily. A message
        that cannot be built (payload too large, broken keys) yields a result with no
        attempt — :class:`TooLarge` or :class:`Rejected` with ``status`` None — instead
        of stopping the stream. A sync iterable runs on the event loop: keep it cheap.
        """
        stream = _Stream(self, messages)
        try:
            while True:
                while stream.results:
                    result = stream.results.popleft()
                    if isinstance(result, Exception):
                        raise result
                    yield result
                if stream.ended():
                    return
                await stream.wait()
        finally:
            # The consumer may stop early (break, exception): stop the rest, quietly.
            await stream.close()

    def _prepare_item(self, item: MessageLike) -> Prepared | PushResult:
        """A stream's item ready to post, or its result when it cannot be built."""
        message = item if isinstance(item, PushMessage) else PushMessage(*item)
        try:
            return self._prepare(message)
        except PayloadTooLarge as exc:
            return PushResult(message, TooLarge(None), attempts=0, detail=str(exc))
        except (InvalidSubscription, InvalidVapid, InvalidOptions) as exc:
            return PushResult(message, Rejected(None, str(exc)), attempts=0, detail=str(exc))

    def _prepare(self, message: PushMessage) -> Prepared:
        subscription, payload, options = message
        if not isinstance(subscription, Subscription):
            subscription = Subscription.from_json(subscription)
            message = message._replace(subscription=subscription)
        options = options or self._default_options
        vapid = options.vapid or self._vapid
        if vapid is None:
            raise InvalidVapid("no VAPID identity: give the sender one or set options.vapid")
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        return message, encrypt(data, subscription), options, vapid

    def _host(self, origin: str) -> _Host:
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = _Host(_Slots(self._per_host))
        return host

    async def _deliver(
        self,
        message: PushMessage,
        body: bytes,
        options: PushOptions,
        vapid: Vapid,
        first: tuple[Outcome, str] | None = None,
    ) -> PushResult:
        """Post until the outcome is final; ``first``: the first attempt's, already made."""
        subscription = message.subscription
        host = self._host(subscription.origin)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            if first is not None and attempt == 1:
                outcome, detail = first
            else:
                wait = host.not_before - loop.time()
                if wait > 0:
                    await self._sleep(wait)
                # Asked for every attempt: a long wait may have outlived the cached token.
                authorization = vapid.authorization(subscription.origin)
                await host.slots.take()
                try:
                    outcome, detail = await self._post(
                        subscription.endpoint, body, options, authorization
                    )
                finally:
                    host.slots.give()
            if attempt >= self._max_attempts:
                return PushResult(message, outcome, attempt, detail)
            delay = self._retry_delay(outcome, attempt)
            if delay is None:
                return PushResult(message, outcome, attempt, detail)
            if isinstance(outcome, RetryAfter) and outcome.status == 429:
                # 429 speaks for the whole host (our sending rate), not this subscriber.
                host.not_before = max(host.not_before, loop.time() + delay)
            await self._sleep(delay)

    def _retry_delay(self, outcome: Outcome, attempt: int) -> float | None:
        return retry_delay(
            outcome,
            attempt,
            base=self._backoff,
            cap=self._max_backoff,
            max_retry_after=self._max_retry_after,
            rng=self._rng,
        )

    async def _post(
        self, url: str, body: bytes, options: PushOptions, authorization: str
    ) -> tuple[Outcome, str]:
        if self._session is not None:
            headers = {**options.headers(), "Authorization": authorization}
            return await self._post_session(self._session, url, body, headers)
        try:
            response = await self.http.post(url, body, self._head(options, authorization))
        except (TimeoutError, OSError) as exc:
            return classify(exc), str(exc)[:_DETAIL_LIMIT]
        return _outcome_of(response.status, response.headers, response.body)

    @property
    def http(self) -> HttpClient:
        """The sender's own HTTP client (made on first use)."""
        if self._http is None:
            self._http = HttpClient(timeout=self._timeout, user_agent=USER_AGENT)
        return self._http

    def _head(self, options: PushOptions, authorization: str) -> bytes:
        """The request's header lines for the own HTTP client."""
        head = self._heads.get(options)
        if head is None:
            # The options' header lines, written once per options object in use.
            lines = "".join(f"{name}: {value}\r\n" for name, value in options.headers().items())
            head = self._heads[options] = lines.encode("latin-1")
            if len(self._heads) > 64:  # options made per message: keep the cache small
                self._heads.pop(next(iter(self._heads)))
        return b"%sAuthorization: %s\r\n" % (head, authorization.encode("latin-1"))

    async def _post_session(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[Outcome, str]:
        try:
            # Never follow a redirect (aiohttp's default would): push services do not
            # redirect, and following one would POST the message (307/308) or GET
            # (301/302/303) wherever the answer points. classify() makes it a failure.
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                return _outcome_of(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return classify(exc), str(exc)[:_DETAIL_LIMIT]


def _outcome_of(status: int, headers: Mapping[str, str], body: bytes) -> tuple[Outcome, str]:
    """The outcome of a push service's answer, and its detail (the start of its body)."""
    outcome = classify(status, headers)
    if 300 <= status < 400 and isinstance(outcome, Rejected):
        return outcome, outcome.reason  # a redirect's body explains nothing
    if outcome.retryable or not 200 <= status < 300:
        return outcome, body[:_DETAIL_LIMIT].decode("utf-8", "replace")
    return outcome, ""


class _Stream:
    """One :meth:`WebPushSender.send_many`: takes messages while fewer than
    ``max_pending`` are in progress, and collects their results as they finish.

    A message's first attempt, when its push service has a free slot and a pooled
    connection is idle, is written at once and its answer handled in a callback: no task,
    no coroutine per message (docs/performance.md has the figures). Everything else — a
    connection to open, a retry, a push service paused by a 429, a caller's aiohttp
    session — runs as a task through ``WebPushSender._deliver``, as :meth:`send` does.
    """

    def __init__(self, sender: WebPushSender, messages: Messages) -> None:
        self.sender = sender
        self.loop = asyncio.get_running_loop()
        self.results: deque[PushResult | Exception] = deque()  # an Exception is raised
        self.pending = 0  # messages taken whose result is not in ``results`` yet
        self.exhausted = False  # nothing more will be taken
        self.closed = False
        self.tasks: set[asyncio.Task[PushResult]] = set()
        self.on_wire: set[_Connection] = set()  # first attempts awaiting their answer
        self.queued: set[_Queued] = set()  # first attempts waiting for a slot
        self._waiter: asyncio.Future[None] | None = None  # the consumer's
        self._room: asyncio.Future[None] | None = None  # an async source's feeder's
        self._items: Iterator[MessageLike] | None = None
        self._feeder: asyncio.Task[None] | None = None
        if isinstance(messages, AsyncIterable):
            self._feeder = self.loop.create_task(self._feed(messages))
        else:
            self._items = iter(messages)
            self._fill()

    # --- the consumer's side -----------------------------------------------------------

    def ended(self) -> bool:
        return self.exhausted and self.pending == 0 and not self.results

    async def wait(self) -> None:
        """Until a result comes or the stream ends."""
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def close(self) -> None:
        """Stop: post nothing more, abandon what is on the wire, cancel the tasks."""
        self.closed = True
        for waiter in self.queued:
            waiter.cancel()
        self.queued.clear()
        for conn in self.on_wire:  # their answers would come to nobody
            self.sender.http.finish(conn, ok=False)
        self.on_wire.clear()
        tasks: list[asyncio.Task[Any]] = [*self.tasks]
        if self._feeder is not None:
            tasks.append(self._feeder)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- taking messages ---------------------------------------------------------------

    def _fill(self) -> None:
        """Take messages from a sync source while there is room."""
        items = self._items
        if items is None:
            return
        limit = self.sender._max_pending
        while not self.exhausted and not self.closed and self.pending < limit:
            try:
                item = next(items)
            except StopIteration:
                self.exhausted = True
                self._wake()
                return
            except Exception as exc:  # the caller's iterable raised
                self._fail(exc)
                return
            self._start(item)

    async def _feed(self, messages: AsyncIterable[MessageLike]) -> None:
        """Take messages from an async source while there is room."""
        try:
            async for item in messages:
                while self.pending >= self.sender._max_pending:
                    self._room = self.loop.create_future()
                    await self._room
                self._start(item)
        except Exception as exc:  # the caller's iterable raised
            self._fail(exc)
        finally:
            self.exhausted = True
            self._wake()

    def _start(self, item: MessageLike) -> None:
        self.pending += 1
        sender = self.sender
        try:
            prepared = sender._prepare_item(item)
        except Exception as exc:  # a malformed item or a bug: the caller must hear of it
            self._done(exc)
            return
        if isinstance(prepared, PushResult):
            self._done(prepared)
            return
        host = sender._host(prepared[0].subscription.origin)
        if sender._session is not None or host.not_before > self.loop.time():
            self._spawn(sender._deliver(*prepared))
        elif host.slots.try_take():
            self._post(prepared, host)
        else:  # its push service has all its slots in use: wait for one, in turn
            waiter = _Queued(lambda: self._slot_given(prepared, host, waiter))
            self.queued.add(waiter)
            host.slots.queue(waiter)

    def _slot_given(self, prepared: Prepared, host: _Host, waiter: _Queued) -> None:
        self.queued.discard(waiter)
        if self.closed:
            host.slots.give()
            return
        self._post(prepared, host)

    def _post(self, prepared: Prepared, host: _Host) -> None:
        """The first attempt, holding one of the push service's slots: written on an idle
        connection, or (none idle) by a task that connects."""
        message, body, options, vapid = prepared
        origin = message.subscription.origin
        try:
            head = self.sender._head(options, vapid.authorization(origin))
            started = self.sender.http.start(message.subscription.endpoint, body, head)
        except OSError:  # not a URL it can post to: the task's attempt says why
            started = None
        if started is None:
            host.slots.give()
            self._spawn(self.sender._deliver(*prepared))
            return
        conn, answer = started
        self.on_wire.add(conn)
        answer.add_done_callback(partial(self._answered, prepared, host, conn))

    # --- results -----------------------------------------------------------------------

    def _answered(
        self, prepared: Prepared, host: _Host, conn: _Connection, answer: asyncio.Future[Response]
    ) -> None:
        if self.closed:  # abandoned by close(): its connection is closed already
            host.slots.give()
            if not answer.cancelled():
                answer.exception()  # retrieved, so asyncio does not report it as lost
            return
        self.on_wire.discard(conn)
        sender = self.sender
        # Cancelled only by close() (then closed, above): count it as a dropped connection.
        error = ConnectionError("request cancelled") if answer.cancelled() else answer.exception()
        if error is not None:
            sender.http.finish(conn, ok=False)
            host.slots.give()
            if not isinstance(error, TimeoutError | OSError):  # a bug: the caller must hear
                self._done(error if isinstance(error, Exception) else RuntimeError(repr(error)))
                return
            first = (classify(error), str(error)[:_DETAIL_LIMIT])
        else:
            # The connection back in the pool before the slot is given: a first attempt
            # waiting for the slot is posted on it there and then.
            sender.http.finish(conn)
            host.slots.give()
            response = answer.result()
            first = _outcome_of(response.status, response.headers, response.body)
        if first[0].retryable and sender._max_attempts > 1:
            self._spawn(sender._deliver(*prepared, first=first))
        else:
            self._done(PushResult(prepared[0], first[0], 1, first[1]))
        self._fill()

    def _spawn(self, work: Coroutine[Any, Any, PushResult]) -> None:
        task = self.loop.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[PushResult]) -> None:
        self.tasks.discard(task)
        if self.closed or task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._done(task.result())
        else:  # a bug: the caller must hear of it, or it would wait for this forever
            self._done(error if isinstance(error, Exception) else RuntimeError(repr(error)))
        self._fill()

    def _done(self, result: PushResult | Exception) -> None:
        self.pending -= 1
        self.results.append(result)
        self._wake()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.results.append(error)
        self.exhausted = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
