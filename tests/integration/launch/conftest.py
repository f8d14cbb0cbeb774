"""Fixtures for launch tests: a push-service simulator in this process (a background
thread) and helpers that make subscribers at it and follow a launch to its end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import http_ece
import httpx
import pytest

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.services import partners
from pushcamp.store import Database
from pushcamp.store import subscribers as subs_q
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription

ENDED = ("Sent", "Paused", "Stopped", "Failed")
LAUNCH = {
    "title": "Hello",
    "description": "A notification",
    "link": "https://shop.pushcamp.dev/sale",
    "ttl": 3600,
}


@pytest.fixture(scope="module")
def sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=7) as simulator:
        yield simulator


def add_subscribers(
    db: Database,
    partner_id: str,
    sim: PushServiceSimulator,
    n: int,
    *,
    engaged: bool = True,
    application_server_key: str | None = None,
    **fields: Any,
) -> list[SimulatedSubscription]:
    """``n`` new subscriptions at the simulator, stored for the partner as the subscribe
    endpoint would store them. Each is bound to ``application_server_key``, by default
    the partner's own VAPID public key (what its site's SDK subscribes with), so the
    simulator answers 403 to a push signed with any other key."""
    if application_server_key is None:
        application_server_key = partners.vapid_public_key(db, partner_id)
    made = [sim.subscribe(application_server_key) for _ in range(n)]
    now = datetime.now(UTC)
    rows = [
        NewSubscription(
            endpoint=s.endpoint, p256dh=s.p256dh, auth=s.to_json()["keys"]["auth"], **fields
        )
        for s in made
    ]
    with db.write() as conn:
        subs_q.upsert_subscriptions(
            conn, partner_id, rows, now, engaged_at=now if engaged else now - timedelta(days=365)
        )
    return made


def received_payload(sim: PushServiceSimulator, sub: SimulatedSubscription) -> dict[str, Any]:
    """The one notification ``sub`` received at the simulator, decrypted with http_ece (a
    library pushcamp did not write) and parsed."""
    (message,) = sim.messages(sub)
    plain = http_ece.decrypt(
        message.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
    )
    payload: dict[str, Any] = json.loads(plain)
    return payload


def launch_body(partner_id: str, **fields: Any) -> dict[str, Any]:
    return {"partner_id": partner_id, **LAUNCH, **fields}


def create_campaign(
    client: httpx.Client, tenant: Any, *, is_all: bool = True, language: str = "all_ALL"
) -> int:
    import secrets

    answer = client.post(
        "/v1/single",
        json=tenant.body(title=f"c {secrets.token_hex(4)}", language=language, is_all=is_all),
        headers=tenant.auth,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["campaign_id"])


def wait_for_launches(
    client: httpx.Client, tenant: Any, campaign_id: int, *, count: int = 1, timeout: float = 60
) -> list[dict[str, Any]]:
    """Poll §2.5's status until the campaign's ``count`` launches have all ended."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth)
        assert status.status_code == 200, status.text
        launches = status.json()["launches"]
        if len(launches) >= count and all(launch["status"] in ENDED for launch in launches):
            return launches
        if time.monotonic() > deadline:
            raise AssertionError(f"launch did not end in {timeout}s: {launches}")
        time.sleep(0.1)
