"""Webhooks end to end (docs/webhooks.md): a real server, real launches to the push-service
simulator, real events reported with the tokens the pushes carried, and real aiohttp
receivers on loopback. Signatures are checked with Python's ``hmac`` only.

* a receiver that fails its first answers gets every event at least once, each event
  with one id of its own kept across retries, retries spaced at least as the backoff
  says, every request signed and timestamped;
* a receiver that always fails: the events become dead letters, listed by the CLI and on
  the panel's settings page;
* a receiver that redirects: its target receives nothing (redirects are not followed);
* a URL on a private or loopback address is refused at registration (CLI exit 2, panel
  400) and nothing is registered; a host name that resolves to one is never connected.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from pushcamp.delivery.webhooks import GuardedResolver
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.conftest import Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    received_payload,
    sim,  # noqa: F401  (the module's simulator fixture)
    wait_for_launches,
)
from tests.integration.webhooks.conftest import BACKOFF, Receiver, cli, wait_until

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def register(database_url: str, partner_id: str, url: str) -> tuple[int, str]:
    done = cli("webhooks", "add", partner_id, url, database_url=database_url)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    return int(row["id"]), str(row["secret"])


def verified(request: Any, secret: str, tolerance: float = 300) -> dict[str, Any]:
    """What a receiver does (docs/webhooks.md), with the standard library only."""
    header = request.headers["Pushcamp-Signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    assert abs(time.time() - timestamp) <= tolerance, "stale timestamp"
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), "bad signature"
    body: dict[str, Any] = json.loads(request.body)
    return body


def launch(client: httpx.Client, tenant: Tenant) -> int:
    campaign_id = create_campaign(client, tenant, is_all=True)
    r = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert r.status_code == 200, r.text
    return campaign_id


def test_a_failing_receiver_gets_every_event_at_least_once_signed_with_backoff(
    server: ServerProcess,
    client: httpx.Client,
    db: Database,
    database_url: str,
    sim: PushServiceSimulator,  # noqa: F811
    receivers: Any,
) -> None:
    tenant = Tenant(db, v1_limit=10_000)
    receiver: Receiver = receivers(lambda n: (500, None) if n < 3 else (200, None))
    webhook_id, secret = register(database_url, tenant.partner_id, receiver.url)
    subs = add_subscribers(db, tenant.partner_id, sim, 3)
    sim.inject(subs[2], Fault.gone())  # its push gets 410: subscriber.gone
    campaign_id = launch(client, tenant)
    (ended,) = wait_for_launches(client, tenant, campaign_id)
    assert ended["status"] == "Sent"
    # The service worker reports with the tokens the pushes carried.
    payloads = [received_payload(sim, sub) for sub in subs[:2]]
    for p in payloads:
        r = httpx.post(p["events_url"], json={"type": "delivered", "token": p["token"]})
        assert r.status_code == 200, r.text
    r = httpx.post(
        payloads[0]["events_url"], json={"type": "clicked", "token": payloads[0]["token"]}
    )
    assert r.status_code == 200, r.text
    gone = {"partner_id": tenant.partner_id, "endpoint": subs[1].endpoint}
    assert client.request("DELETE", "/v1/subscriptions", json=gone).status_code == 200

    expected = {
        ("launch.started", None),
        ("launch.finished", None),
        ("notification.delivered", subs[0].endpoint),
        ("notification.delivered", subs[1].endpoint),
        ("notification.clicked", subs[0].endpoint),
        ("subscriber.gone", subs[2].endpoint),
        ("subscriber.unsubscribed", subs[1].endpoint),
    }

    def delivered_events() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for request in receiver.received():
            if request.status == 200:
                for event in json.loads(request.body)["events"]:
                    found[event["id"]] = event
        return found

    def kinds() -> set[tuple[str, str | None]]:
        return {(e["type"], e["data"].get("endpoint")) for e in delivered_events().values()}

    wait_until(lambda: kinds() >= expected, what=f"events {expected - kinds()}")
    requests = receiver.received()
    assert [r.status for r in requests[:3]] == [500, 500, 500]
    # Every request is signed with the webhook's secret, with a fresh timestamp.
    attempts: dict[str, list[float]] = defaultdict(list)
    seen: dict[str, dict[str, Any]] = {}
    for request in requests:
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Pushcamp-Webhook-Id"] == str(webhook_id)
        for event in verified(request, secret)["events"]:
            assert set(event) == {"id", "type", "created_at", "data"}
            # A retried event keeps its id and its content.
            assert seen.setdefault(event["id"], event) == event
            attempts[event["id"]].append(request.at)
    # One id per event: exactly the events that happened, each under its own id.
    events = delivered_events()
    assert sorted((e["type"], e["data"].get("endpoint")) for e in events.values()) == sorted(
        expected
    )
    assert all(
        e["data"]["launch_id"] == ended["launch_id"]
        for e in events.values()
        if e["type"] != "subscriber.unsubscribed"
    )
    clicked = next(e for e in events.values() if e["type"] == "notification.clicked")
    assert clicked["data"]["subscriber_id"] > 0
    # Retries came no sooner than the backoff says (lower bounds only).
    retried = [times for times in attempts.values() if len(times) > 1]
    assert retried, "no event was retried"
    for times in retried:
        for k, (before, after) in enumerate(zip(times, times[1:], strict=False)):
            assert after - before >= BACKOFF[min(k, len(BACKOFF) - 1)], times
    # The list shows them delivered.
    listed = cli("webhooks", "list", tenant.partner_id, database_url=database_url)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == webhook_id and row["done"] == len(expected) and row["dead"] == 0


@contextmanager
def sign_in(server: ServerProcess, token: str) -> Iterator[httpx.Client]:
    address = "10." + ".".join(str(b) for b in secrets.token_bytes(3))
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"X-Forwarded-For": address}
    ) as client:
        answer = client.post("/panel/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        yield client


def test_a_receiver_that_always_fails_gets_dead_letters_in_the_cli_and_panel(
    server: ServerProcess,
    client: httpx.Client,
    db: Database,
    database_url: str,
    sim: PushServiceSimulator,  # noqa: F811
    receivers: Any,
) -> None:
    tenant = Tenant(db, v1_limit=10_000)
    receiver: Receiver = receivers(lambda n: (503, None))
    register(database_url, tenant.partner_id, receiver.url)
    add_subscribers(db, tenant.partner_id, sim, 1)
    campaign_id = launch(client, tenant)
    wait_for_launches(client, tenant, campaign_id)

    def dead() -> list[dict[str, Any]]:
        out = cli("webhooks", "dead-letters", tenant.partner_id, database_url=database_url)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    wait_until(lambda: len(dead()) == 2, what="two dead letters")
    letters = dead()
    assert {d["type"] for d in letters} == {"launch.started", "launch.finished"}
    assert all(d["attempts"] >= 2 and d["error"] == "HTTP 503" for d in letters)
    # They were tried and never answered 2xx.
    assert receiver.received() and all(r.status == 503 for r in receiver.received())
    with sign_in(server, tenant.token) as panel:
        page = panel.get("/panel/settings")
        assert page.status_code == 200
        section = page.text.split('class="dead-letters"', 1)[1]
        for d in letters:
            assert f'data-event="{d["id"]}"' in section
        assert "HTTP 503" in section


def test_redirects_are_not_followed(
    server: ServerProcess,
    client: httpx.Client,
    db: Database,
    database_url: str,
    sim: PushServiceSimulator,  # noqa: F811
    receivers: Any,
) -> None:
    tenant = Tenant(db, v1_limit=10_000)
    target: Receiver = receivers(lambda n: (200, None))
    redirector: Receiver = receivers(lambda n: (307, target.url))
    register(database_url, tenant.partner_id, redirector.url)
    add_subscribers(db, tenant.partner_id, sim, 1)
    campaign_id = launch(client, tenant)
    wait_for_launches(client, tenant, campaign_id)
    wait_until(lambda: len(redirector.received()) >= 3, what="three attempts")
    assert target.received() == []
    listed = cli("webhooks", "list", tenant.partner_id, database_url=database_url)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["done"] == 0 and row["pending"] + row["dead"] == 2


PRIVATE = [
    "https://10.0.0.5/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://127.0.0.2/hook",
    "https://localhost/hook",
    "http://hooks.example.com/hook",
    "https://user:pw@hooks.example.com/hook",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_a_private_or_plain_url_is_refused_at_registration(
    server: ServerProcess, db: Database, database_url: str, url: str
) -> None:
    tenant = Tenant(db)
    done = cli("webhooks", "add", tenant.partner_id, url, database_url=database_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "url" in done.stderr
    with sign_in(server, tenant.token) as panel:
        page = panel.get("/panel/settings")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        answer = panel.post(
            "/panel/settings/webhooks", data={"url": url, "csrf_token": csrf.group(1)}
        )
        assert answer.status_code == 400
        assert "No webhook yet." in answer.text
    listed = cli("webhooks", "list", tenant.partner_id, database_url=database_url)
    assert listed.returncode == 0 and listed.stdout == ""


def test_the_panel_registers_a_public_https_webhook_and_shows_its_secret_once(
    server: ServerProcess, db: Database, database_url: str
) -> None:
    tenant = Tenant(db)
    with sign_in(server, tenant.token) as panel:
        csrf = CSRF.search(panel.get("/panel/settings").text)
        assert csrf is not None
        answer = panel.post(
            "/panel/settings/webhooks",
            data={"url": "https://hooks.example.com/pushcamp", "csrf_token": csrf.group(1)},
        )
        assert answer.status_code == 200
        secret = re.search(r'id="new-webhook-secret">(whsec_[0-9a-f]{64})<', answer.text)
        assert secret is not None
        assert secret.group(1) not in panel.get("/panel/settings").text
    listed = cli("webhooks", "list", tenant.partner_id, database_url=database_url)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["url"] == "https://hooks.example.com/pushcamp"
    removed = cli(
        "webhooks", "remove", tenant.partner_id, str(row["id"]), database_url=database_url
    )
    assert removed.returncode == 0
    again = cli("webhooks", "remove", tenant.partner_id, str(row["id"]), database_url=database_url)
    assert again.returncode == 3


def test_a_name_resolving_to_loopback_is_never_connected() -> None:
    """DNS rebinding: the dispatcher's resolver drops private and loopback addresses of a
    host the operator did not list, so the connection fails instead."""

    async def resolve(allowed: frozenset[str]) -> list[Any]:
        return list(await GuardedResolver(allowed).resolve("localhost", 443))

    with pytest.raises(OSError, match="private"):
        asyncio.run(resolve(frozenset()))
    found = asyncio.run(resolve(frozenset({"localhost"})))
    assert found and all(r["host"] in ("127.0.0.1", "::1") for r in found)
