"""Panel fixtures: signing in over HTTP, and a partner with a launched campaign whose
numbers are real (sent by the engine to the push-service simulator, delivered and
clicked through the public events endpoint with the tokens the pushes carried)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fake_address() -> str:
    """A client address of its own (the server trusts X-Forwarded-For from 127.0.0.1), so
    that sign-ins of different tests never share a sign-in budget."""
    return "10." + ".".join(str(b) for b in secrets.token_bytes(3))


@contextmanager
def sign_in(
    server: ServerProcess, token: str, address: str | None = None
) -> Iterator[httpx.Client]:
    """A client with a panel session opened with ``token``."""
    with httpx.Client(
        base_url=server.url,
        timeout=30,
        headers={"X-Forwarded-For": address or fake_address()},
    ) as client:
        answer = client.post("/panel/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/panel/campaigns"
        yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


@dataclass
class Launched:
    tenant: Tenant
    campaign_id: int
    title: str
    subscribers: int
    delivered: int
    clicked: int


@pytest.fixture(scope="module")
def panel_sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=11) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def launched(db: Database, server: ServerProcess, panel_sim: PushServiceSimulator) -> Launched:
    """A partner with 6 subscribers and one launched ``is_all`` campaign: 6 sent, 4
    delivered, 2 clicked."""
    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(
        db, tenant.partner_id, panel_sim, 6, language="en_US", browser="Chrome", device="desktop"
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        campaign_id = create_campaign(client, tenant)
        title = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()["title"]
        answer = client.post(
            f"/v1/single/{campaign_id}",
            json=launch_body(
                tenant.partner_id,
                title="Summer sale <b>now</b>",
                description="20% off & free shipping",
            ),
            headers=tenant.auth,
        )
        assert answer.status_code == 200, answer.text
        [launch] = wait_for_launches(client, tenant, campaign_id)
        assert launch["sent"] == 6, launch
        for i, sub in enumerate(subs[:4]):
            [message] = panel_sim.messages(sub)
            token = json.loads(message.text)["token"]
            kinds = ["delivered", "clicked"] if i < 2 else ["delivered"]
            for kind in kinds:
                event = client.post("/v1/events", json={"type": kind, "token": token})
                assert event.status_code in (200, 201, 204), event.text
    return Launched(tenant, campaign_id, title, 6, 4, 2)
