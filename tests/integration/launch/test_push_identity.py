"""What a launch puts on the wire, checked at the push service with libraries pushcamp did
not write: pushes are signed with the partner's own VAPID key (the one the SDK hands out,
or the one imported with ``pushcamp vapid import``), are readable by the subscriber
(``http_ece``) and carry a valid RFC 8292 token (PyJWT); and a push service that
redirects gets a dropped message, while the place it points to receives nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import http_ece
import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import subscribers as subs_q
from pushcamp.store.models import Delivery
from pushcamp.testing.simulator import PushServiceSimulator, ReceivedMessage
from pushcamp.webpush import b64url_decode, b64url_encode
from tests.conftest import run_cli
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)

DAY = 24 * 3600


def config_key(client: httpx.Client, partner_id: str) -> str:
    answer = client.get(f"/sdk/{partner_id}/config")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["vapid_public_key"])


def launch_and_wait(client: httpx.Client, tenant: Any, **fields: Any) -> dict[str, Any]:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, **fields),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = wait_for_launches(client, tenant, campaign_id)
    return launch


def vapid_header(message: ReceivedMessage) -> tuple[str, str]:
    """``(t, k)`` of the ``Authorization: vapid t=..., k=...`` header as it arrived."""
    scheme, _, params = message.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert set(fields) == {"t", "k"}
    return fields["t"], fields["k"]


def test_a_launch_is_signed_with_the_partners_key_and_readable_by_outside_libraries(
    client: httpx.Client, tenant: Any, db: Database, sim: PushServiceSimulator, settings: Settings
) -> None:
    key = config_key(client, tenant.partner_id)  # what the SDK subscribes browsers with
    [sub] = add_subscribers(db, tenant.partner_id, sim, 1)
    assert sim.state.get(sub).application_server_key == key
    started = time.time()
    launch = launch_and_wait(client, tenant, title="Spring sale", description="20% off ✓", ttl=3600)
    assert launch["sent"] == 1, launch
    [message] = sim.messages(sub)

    # The body, decrypted with the subscriber's private key by http_ece.
    plain = http_ece.decrypt(
        message.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
    )
    payload = json.loads(plain)
    assert payload["title"] == "Spring sale" and payload["body"] == "20% off ✓"
    assert payload["url"] == launch_body(tenant.partner_id)["link"]
    assert message.headers["Content-Encoding"] == "aes128gcm"
    assert message.headers["TTL"] == "3600"

    # The whole Authorization header, verified by PyJWT with the key it names.
    token, k = vapid_header(message)
    assert k == key  # the key /sdk/{partner}/config hands out, nothing else
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(k))
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    claims = jwt.decode(
        token,
        pem,
        algorithms=["ES256"],
        audience=sim.url,  # the push service's origin: scheme, host and port
        options={"require": ["aud", "exp", "sub"]},
    )
    assert claims["aud"] == sim.url
    assert started < claims["exp"] <= time.time() + DAY
    assert claims["sub"] == settings.vapid_subject


def test_after_vapid_import_launches_sign_with_the_imported_key(
    client: httpx.Client, tenant: Any, db: Database, sim: PushServiceSimulator, database_url: str
) -> None:
    old_key = config_key(client, tenant.partner_id)
    [old_sub] = add_subscribers(db, tenant.partner_id, sim, 1)  # bound to the old key

    private = ec.generate_private_key(ec.SECP256R1())
    private_b64 = b64url_encode(private.private_numbers().private_value.to_bytes(32, "big"))
    public_b64 = b64url_encode(
        private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    run_cli(
        "vapid",
        "import",
        tenant.partner_id,
        "--public-key",
        public_b64,
        "--private-key",
        private_b64,
        database_url=database_url,
    )
    assert run_cli(
        "vapid", "show", tenant.partner_id, database_url=database_url
    ).stdout.strip() == (public_b64)
    # The SDK's config follows (its site directory is refreshed within 2 s).
    deadline = time.monotonic() + 10
    while (served := config_key(client, tenant.partner_id)) == old_key:
        assert time.monotonic() < deadline, "the config endpoint still serves the old key"
        time.sleep(0.2)
    assert served == public_b64 != old_key

    [new_sub] = add_subscribers(db, tenant.partner_id, sim, 1)  # bound to the imported key
    assert sim.state.get(new_sub).application_server_key == public_b64
    launch = launch_and_wait(client, tenant)
    assert launch["sent"] == 1, launch
    [message] = sim.messages(new_sub)
    assert vapid_header(message)[1] == public_b64
    # The browser subscribed with the old key refuses the new one, as a real service does.
    assert sim.attempts(old_sub) == 1 and sim.messages(old_sub) == []
    with db.read() as conn:
        states = dict(
            conn.execute(
                select(Delivery.status_code, Delivery.state).where(
                    Delivery.launch_id == launch["launch_id"]
                )
            ).all()
        )
    assert states == {201: "sent", 403: "dropped"}


# --- a push service that redirects ---------------------------------------------------


class RedirectingService:
    """Two aiohttp listeners on 127.0.0.1 in a thread of their own: a push service that
    answers every push with the redirect its path names (``/push/307``) to the second,
    a target that records every request it gets."""

    def __init__(self) -> None:
        self.pushes: list[str] = []  # paths the push service was asked for
        self.target_requests: list[tuple[str, str]] = []
        self.url = self.target_url = ""
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _serve(self, handler: Any) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner, f"http://127.0.0.1:{port}"

    async def _main(self) -> None:
        async def target(request: web.Request) -> web.Response:
            await request.read()
            with self._lock:
                self.target_requests.append((request.method, request.path))
            return web.Response(status=201)

        async def service(request: web.Request) -> web.Response:
            await request.read()
            with self._lock:
                self.pushes.append(request.path)
            status = int(request.path.rsplit("/", 1)[1])
            return web.Response(status=status, headers={"Location": f"{self.target_url}/steal"})

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        target_runner, self.target_url = await self._serve(target)
        service_runner, self.url = await self._serve(service)
        self._ready.set()
        await self._stop.wait()
        await service_runner.cleanup()
        await target_runner.cleanup()

    def __enter__(self) -> RedirectingService:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def redirecting() -> Iterator[RedirectingService]:
    with RedirectingService() as service:
        yield service


REDIRECTS = [301, 302, 303, 307, 308]


def test_a_redirecting_push_service_gets_a_dropped_message_and_its_target_nothing(
    client: httpx.Client, tenant: Any, db: Database, redirecting: RedirectingService
) -> None:
    rows = []
    for status in REDIRECTS:
        point = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
        rows.append(
            NewSubscription(
                endpoint=f"{redirecting.url}/push/{status}",
                p256dh=b64url_encode(point),
                auth=b64url_encode(secrets.token_bytes(16)),
            )
        )
    now = datetime.now(UTC)
    with db.write() as conn:
        subs_q.upsert_subscriptions(conn, tenant.partner_id, rows, now, engaged_at=now)

    launch = launch_and_wait(client, tenant)
    assert (launch["targeted"], launch["sent"], launch["dropped"]) == (5, 0, 5), launch
    with db.read() as conn:
        records = conn.execute(
            select(Delivery.status_code, Delivery.state, Delivery.reason).where(
                Delivery.launch_id == launch["launch_id"]
            )
        ).all()
    assert sorted(records) == [(s, "dropped", "serviceProviderErrors") for s in REDIRECTS]
    assert sorted(redirecting.pushes) == [f"/push/{s}" for s in REDIRECTS]  # once each
    assert redirecting.target_requests == []  # no GET, no re-POSTed body
