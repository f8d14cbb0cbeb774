"""The async sender: many messages to many push services, over pooled connections.

HTTP: the sender's own HTTP/1.1 client (``_http.py``: asyncio protocol, httptools
parser), about a third of the CPU per request of aiohttp's ``ClientSession``, which had
been chosen over httpx (whose async client lost throughput as concurrency rose; HTTP/2
gave nothing back, push services answering every message with a tiny 201). A caller's
own aiohttp session is still used as given. The figures are in ``docs/performance.md``.

Shape: one task per message, at most ``max_pending`` alive at once (messages waiting
for a retry included), so a stream of any length uses bounded memory. Each push-service
origin has its own semaphore of ``per_host`` slots, held only while a request is on the
wire — never while encrypting or waiting to retry — so a slow host cannot hold slots
another host's messages could use, and a host that answers 429 is paused as a whole.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
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
from pushcamp.webpush._http import HttpClient
from pushcamp.webpush._message import PushMessage, PushOptions, PushResult
from pushcamp.webpush._outcome import Outcome, Rejected, RetryAfter, TooLarge, classify
from pushcamp.webpush._retry import retry_delay
from pushcamp.webpush._subscription import Subscription
from pushcamp.webpush._vapid import Vapid

USER_AGENT = "pushcamp-webpush"
_DETAIL_LIMIT = 300  # characters of a failure's body kept for the caller


@dataclass(slots=True)
class _Host:
    slots: asyncio.Semaphore
    not_before: float = 0.0  # loop time before which nothing is sent (after a 429)


MessageLike = PushMessage | tuple[Any, ...]
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
        loop = asyncio.get_running_loop()
        # A result, an unexpected error to re-raise, or None: the end of the input.
        results: asyncio.Queue[PushResult | Exception | None] = asyncio.Queue()
        pending = asyncio.Semaphore(self._max_pending)
        tasks: set[asyncio.Task[None]] = set()
        launched = 0

        async def run_one(item: MessageLike) -> None:
            try:
                results.put_nowait(await self._deliver_item(item))
            except Exception as exc:  # a bug or a malformed item: the caller must hear of
                results.put_nowait(exc)  # it, or it would wait for this result forever
            finally:
                pending.release()

        async def produce() -> None:
            nonlocal launched
            try:
                async for item in _iterate(messages):
                    await pending.acquire()
                    task = loop.create_task(run_one(item))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    launched += 1
            finally:
                results.put_nowait(None)  # the end marker: nothing more will be launched

        producer = loop.create_task(produce())
        yielded = 0
        ended = False
        try:
            while not ended or yielded < launched:
                result = await results.get()
                if result is None:
                    ended = True
                    failure = None if producer.cancelled() else producer.exception()
                    if failure is not None:  # the caller's iterable raised
                        raise failure
                    continue
                if isinstance(result, Exception):
                    raise result
                yielded += 1
                yield result
        finally:
            # The consumer may stop early (break, exception): stop the rest, quietly.
            producer.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(producer, *tasks, return_exceptions=True)

    async def _deliver_item(self, item: MessageLike) -> PushResult:
        message = item if isinstance(item, PushMessage) else PushMessage(*item)
        try:
            prepared = self._prepare(message)
        except PayloadTooLarge as exc:
            return PushResult(message, TooLarge(None), attempts=0, detail=str(exc))
        except (InvalidSubscription, InvalidVapid, InvalidOptions) as exc:
            return PushResult(message, Rejected(None, str(exc)), attempts=0, detail=str(exc))
        return await self._deliver(*prepared)

    def _prepare(self, message: PushMessage) -> tuple[PushMessage, bytes, PushOptions, Vapid]:
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

    async def _deliver(
        self, message: PushMessage, body: bytes, options: PushOptions, vapid: Vapid
    ) -> PushResult:
        subscription = message.subscription
        host = self._hosts.get(subscription.origin)
        if host is None:
            host = self._hosts[subscription.origin] = _Host(asyncio.Semaphore(self._per_host))
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            wait = host.not_before - loop.time()
            if wait > 0:
                await self._sleep(wait)
            # Asked for every attempt: a long wait may have outlived the cached token.
            authorization = vapid.authorization(subscription.origin)
            async with host.slots:
                outcome, detail = await self._post(
                    subscription.endpoint, body, options, authorization
                )
            if attempt >= self._max_attempts:
                return PushResult(message, outcome, attempt, detail)
            delay = retry_delay(
                outcome,
                attempt,
                base=self._backoff,
                cap=self._max_backoff,
                max_retry_after=self._max_retry_after,
                rng=self._rng,
            )
            if delay is None:
                return PushResult(message, outcome, attempt, detail)
            if isinstance(outcome, RetryAfter) and outcome.status == 429:
                # 429 speaks for the whole host (our sending rate), not this subscriber.
                host.not_before = max(host.not_before, loop.time() + delay)
            await self._sleep(delay)

    async def _post(
        self, url: str, body: bytes, options: PushOptions, authorization: str
    ) -> tuple[Outcome, str]:
        if self._session is not None:
            headers = {**options.headers(), "Authorization": authorization}
            return await self._post_session(self._session, url, body, headers)
        if self._http is None:
            self._http = HttpClient(timeout=self._timeout, user_agent=USER_AGENT)
        head = self._heads.get(options)
        if head is None:
            # The options' header lines, written once per options object in use.
            lines = "".join(f"{name}: {value}\r\n" for name, value in options.headers().items())
            head = self._heads[options] = lines.encode("latin-1")
            if len(self._heads) > 64:  # options made per message: keep the cache small
                self._heads.pop(next(iter(self._heads)))
        try:
            response = await self._http.post(
                url, body, b"%sAuthorization: %s\r\n" % (head, authorization.encode("latin-1"))
            )
        except (TimeoutError, OSError) as exc:
            return classify(exc), str(exc)[:_DETAIL_LIMIT]
        status = response.status
        outcome = classify(status, response.headers)
        if 300 <= status < 400 and isinstance(outcome, Rejected):
            return outcome, outcome.reason  # a redirect's body explains nothing
        if outcome.retryable or not 200 <= status < 300:
            return outcome, response.body[:_DETAIL_LIMIT].decode("utf-8", "replace")
        return outcome, ""

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
                content = await response.read()
                outcome = classify(response.status, response.headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return classify(exc), str(exc)[:_DETAIL_LIMIT]
        if 300 <= response.status < 400 and isinstance(outcome, Rejected):
            return outcome, outcome.reason  # a redirect's body explains nothing
        if outcome.retryable or not 200 <= response.status < 300:
            return outcome, content[:_DETAIL_LIMIT].decode("utf-8", "replace")
        return outcome, ""


async def _iterate(messages: Messages) -> AsyncIterator[MessageLike]:
    if isinstance(messages, AsyncIterable):
        async for item in messages:
            yield item
    else:
        for item in messages:
            yield item
