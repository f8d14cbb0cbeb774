"""Push services never redirect, so the sender never follows a redirect: a 3xx is a failed
message that names where it pointed, and the place it pointed to receives nothing — not
the encrypted body (307/308 would re-POST it), not a GET (301/302/303). Proved with two
real listeners on 127.0.0.1: a "push service" that redirects and a target that counts
every request it gets."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.webpush import (
    PushResult,
    Rejected,
    Subscription,
    Vapid,
    WebPushSender,
    b64url_encode,
)

REDIRECTS = [301, 302, 303, 307, 308]
Handler = Callable[[web.Request], web.StreamResponse]


@dataclass
class Listener:
    url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)


@asynccontextmanager
async def listen(handler_for: Handler) -> AsyncIterator[Listener]:
    """An aiohttp server on a free 127.0.0.1 port that records every request, whatever
    its method and path, and answers with ``handler_for(request)``."""
    seen = Listener()

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.requests.append((request.method, request.path))
        await request.read()
        return handler_for(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    seen.url = f"http://127.0.0.1:{port}"
    try:
        yield seen
    finally:
        await runner.cleanup()


def subscription_at(endpoint: str) -> Subscription:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return Subscription(endpoint, b64url_encode(point), b64url_encode(secrets.token_bytes(16)))


async def push_through_redirect(status: int) -> tuple[Listener, Listener, PushResult]:
    async with listen(lambda _r: web.Response(status=201)) as target:
        location = f"{target.url}/steal"
        async with listen(
            lambda _r: web.Response(status=status, headers={"Location": location})
        ) as service:
            vapid = Vapid.generate("mailto:push-ops@pushcamp.dev")
            async with WebPushSender(vapid, max_attempts=4) as sender:
                result = await sender.send(
                    subscription_at(f"{service.url}/push/abc"), b'{"title": "secret"}'
                )
            await asyncio.sleep(0)  # let a (wrongly) followed request reach the target
    return service, target, result


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirect_is_a_failure_and_its_target_gets_nothing(status: int) -> None:
    service, target, result = asyncio.run(push_through_redirect(status))
    assert target.requests == []  # neither the body re-POSTed nor a GET
    assert service.requests == [("POST", "/push/abc")]  # asked once, never retried
    assert not result.ok
    assert result.attempts == 1
    assert result.outcome == Rejected(status, "redirect to 127.0.0.1 not followed")
    assert result.detail == "redirect to 127.0.0.1 not followed"


def test_send_many_reports_redirects_as_failures_too() -> None:
    async def scenario() -> tuple[Listener, list[PushResult]]:
        async with listen(lambda _r: web.Response(status=201)) as target:
            location = f"{target.url}/x"
            async with listen(
                lambda r: web.Response(
                    status=REDIRECTS[int(r.match_info["tail"].rsplit("/", 1)[1])],
                    headers={"Location": location},
                )
            ) as service:
                vapid = Vapid.generate("mailto:push-ops@pushcamp.dev")
                messages = [
                    (subscription_at(f"{service.url}/push/{i}"), "hello", None)
                    for i in range(len(REDIRECTS))
                ]
                async with WebPushSender(vapid) as sender:
                    results = [r async for r in sender.send_many(messages)]
                await asyncio.sleep(0)
        return target, results

    target, results = asyncio.run(scenario())
    assert target.requests == []
    outcomes = [r.outcome for r in results if not r.ok and isinstance(r.outcome, Rejected)]
    assert len(outcomes) == len(results)
    assert sorted(o.status or 0 for o in outcomes) == REDIRECTS
