"""The audience's language (contract §2.2) and pausing (docs/delivery.md), through the
public API, the real CLI and a real push-service simulator: what each subscription
received is read at the simulator, not in pushcamp's tables.

- A launch's language is its own ``language`` when given, else the campaign's;
  ``all_ALL`` means no language filter.
- A launch pauses only when subscriptions vouched for (they accepted a push from the
  partner before, or were imported) refuse the sender; junk registered through the
  public endpoint that answers 400/403 is dropped, never pauses, never deactivated.
- ``pushcamp launches resume`` sends to the refused ones again and to nobody twice.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from pushcamp.domain.launches import topic_for
from pushcamp.store import Database
from pushcamp.store.models import Delivery, Subscriber
from pushcamp.testing.simulator import Fault, PushServiceSimulator, SimulatedSubscription
from tests.conftest import run_cli
from tests.integration.launch.conftest import create_campaign, launch_body, wait_for_launches


def key_pair() -> tuple[str, str]:
    """A VAPID pair made with ``cryptography``: (public point, private scalar), base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64(public), b64(private)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def import_key(partner_id: str, pair: tuple[str, str], database_url: str) -> None:
    run_cli(
        "vapid",
        "import",
        partner_id,
        "--public-key",
        pair[0],
        "--private-key",
        "-",
        stdin=pair[1],
        database_url=database_url,
    )


def register(
    client: httpx.Client,
    partner_id: str,
    sub: SimulatedSubscription,
    *,
    language: str | None = None,
    keys: dict[str, str] | None = None,
) -> None:
    """Subscribe as a visitor's browser would: the public endpoint, no token."""
    body: dict[str, Any] = {"partner_id": partner_id, **sub.to_json()}
    if keys is not None:
        body["keys"] = keys
    if language is not None:
        body["language"] = language
    answer = client.post("/v1/subscriptions", json=body)
    assert answer.status_code == 201, answer.text


def launch(client: httpx.Client, tenant: Any, campaign_id: int, **fields: Any) -> None:
    body = launch_body(tenant.partner_id, include_unengaged=True, **fields)
    answer = client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text


def received(sim: PushServiceSimulator, sub: SimulatedSubscription, launch_id: int) -> int:
    """Messages of this launch the simulator accepted for this subscription."""
    topic = topic_for(launch_id)
    return sum(1 for m in sim.messages(sub) if m.topic == topic)


def wait_for_status(
    client: httpx.Client, tenant: Any, campaign_id: int, status: str, timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        launches = answer.json()["launches"]
        if launches and launches[-1]["status"] == status:
            return dict(launches[-1])
        if time.monotonic() > deadline:
            raise AssertionError(f"launch not {status} in {timeout}s: {launches}")
        time.sleep(0.1)


def records(db: Database, launch_id: int) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(Delivery.state, Delivery.reason, func.count())
            .where(Delivery.launch_id == launch_id)
            .group_by(Delivery.state, Delivery.reason)
        ).all()
    return {f"{state}:{reason or ''}": n for state, reason, n in rows}


def partner_key(client: httpx.Client, partner_id: str) -> str:
    answer = client.get(f"/sdk/{partner_id}/config")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["vapid_public_key"])


# --- the audience's language ------------------------------------------------------------


def test_launch_language_else_campaign_language_and_all_all_means_everyone(
    client: httpx.Client, tenant, sim: PushServiceSimulator
) -> None:
    key = partner_key(client, tenant.partner_id)
    by_language: dict[str, list[SimulatedSubscription]] = {}
    for language, n in (("tr-TR", 3), ("en-US", 2), ("de", 2)):
        subs = [sim.subscribe(key) for _ in range(n)]
        for sub in subs:
            register(client, tenant.partner_id, sub, language=language)
        by_language[language] = subs
    no_language = [sim.subscribe(key) for _ in range(2)]
    for sub in no_language:
        register(client, tenant.partner_id, sub)
    everyone = [s for subs in by_language.values() for s in subs] + no_language
    turkish, english, german = by_language["tr-TR"], by_language["en-US"], by_language["de"]

    cases = [
        # (campaign language, launch language or None, who must receive it)
        ("tr_TR", None, turkish),  # the published body: no language, the campaign's
        ("tr_TR", "all_ALL", everyone),  # the launch's all_ALL: no filter
        ("all_ALL", None, everyone),
        ("all_ALL", "en_US", english),  # a launch narrows an all_ALL campaign
        ("tr_TR", "de_DE", german),  # the launch's language wins over the campaign's
    ]
    for campaign_language, launch_language, expected in cases:
        campaign_id = create_campaign(client, tenant, language=campaign_language)
        fields = {} if launch_language is None else {"language": launch_language}
        launch(client, tenant, campaign_id, **fields)
        [done] = wait_for_launches(client, tenant, campaign_id)
        case = (campaign_language, launch_language)
        assert done["status"] == "Sent", case
        got = {s.endpoint for s in everyone if received(sim, s, done["launch_id"]) == 1}
        assert got == {s.endpoint for s in expected}, case
        assert all(received(sim, s, done["launch_id"]) <= 1 for s in everyone), case
        assert done["sent"] == len(expected), case


# --- pausing and resuming ---------------------------------------------------------------


def test_a_changed_key_pauses_and_resume_sends_to_everyone_once(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator, database_url: str
) -> None:
    right = key_pair()
    import_key(tenant.partner_id, right, database_url)
    subs = [sim.subscribe(right[0]) for _ in range(60)]
    for sub in subs:
        register(client, tenant.partner_id, sub, language="en-US")
    first = create_campaign(client, tenant)
    launch(client, tenant, first)
    assert wait_for_launches(client, tenant, first)[0]["sent"] == 60  # now vouched for

    import_key(tenant.partner_id, key_pair(), database_url)  # the wrong key
    campaign_id = create_campaign(client, tenant)
    launch(client, tenant, campaign_id)
    paused = wait_for_status(client, tenant, campaign_id, "Paused")
    launch_id = paused["launch_id"]
    reason = paused["paused_reason"]
    assert "403" in reason and "VAPID key" in reason and "vapid import" in reason, reason
    assert f"launches resume {launch_id}" in reason
    assert all(received(sim, s, launch_id) == 0 for s in subs)
    refused_at_sim = sum(sim.attempts(s) for s in subs) - 60
    assert refused_at_sim >= 50  # the push service did refuse them
    shown = json.loads(
        run_cli("launches", "show", str(launch_id), database_url=database_url).stdout
    )
    assert shown["status"] == "Paused" and shown["paused_reason"] == reason
    with db.read() as conn:  # a refusal of the sender never deactivates anybody
        inactive = conn.execute(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.partner_id == tenant.partner_id, Subscriber.active.is_(False))
        ).scalar_one()
    assert inactive == 0

    import_key(tenant.partner_id, right, database_url)
    resumed = run_cli("launches", "resume", str(launch_id), database_url=database_url)
    assert "resumed" in resumed.stderr
    done = wait_for_status(client, tenant, campaign_id, "Sent")
    assert [received(sim, s, launch_id) for s in subs] == [1] * 60  # nobody skipped or twice
    assert (done["targeted"], done["sent"], done["dropped"]) == (60, 60, 0)
    assert "paused_reason" not in done
    assert records(db, launch_id) == {"sent:": 60}

    again = run_cli("launches", "resume", str(launch_id), database_url=database_url, check=False)
    assert again.returncode == 2 and "not Paused" in again.stderr


def test_resume_skips_what_was_answered_before_the_pause(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator, database_url: str
) -> None:
    """The push service refuses 85 of 100 subscriptions that worked before: the launch
    pauses with some messages accepted; after resume each got exactly one."""
    key = partner_key(client, tenant.partner_id)
    subs = [sim.subscribe(key) for _ in range(100)]
    for sub in subs:
        register(client, tenant.partner_id, sub)
    first = create_campaign(client, tenant)
    launch(client, tenant, first)
    assert wait_for_launches(client, tenant, first)[0]["sent"] == 100
    refused = subs[:85]
    for sub in refused:
        sim.inject(sub, Fault(status=403, body="the VAPID key does not match"))
    campaign_id = create_campaign(client, tenant)
    launch(client, tenant, campaign_id)
    paused = wait_for_status(client, tenant, campaign_id, "Paused")
    launch_id = paused["launch_id"]
    before = {s.endpoint: received(sim, s, launch_id) for s in subs}
    assert all(before[s.endpoint] == 0 for s in refused)
    accepted_before = [s for s in subs if before[s.endpoint] == 1]
    assert accepted_before  # some were accepted before the pause: they must not get it again
    sim.clear_faults()  # the push service accepts the sender again
    run_cli("launches", "resume", str(launch_id), database_url=database_url)
    wait_for_status(client, tenant, campaign_id, "Sent")
    assert [received(sim, s, launch_id) for s in subs] == [1] * 100
    assert records(db, launch_id) == {"sent:": 100}


def test_junk_public_subscriptions_refusing_us_never_pause_a_launch(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    key = partner_key(client, tenant.partner_id)
    good = [sim.subscribe(key) for _ in range(5)]
    other_key = key_pair()[0]
    junk_403 = [sim.subscribe(other_key) for _ in range(100)]  # made for another key
    junk_400 = [sim.subscribe(key) for _ in range(60)]  # registered with keys not theirs
    stolen = sim.subscribe(key).to_json()["keys"]
    for sub in good + junk_403:
        register(client, tenant.partner_id, sub)
    for sub in junk_400:
        register(client, tenant.partner_id, sub, keys=stolen)
    campaign_id = create_campaign(client, tenant)
    launch(client, tenant, campaign_id)
    [done] = wait_for_launches(client, tenant, campaign_id)
    assert done["status"] == "Sent", done
    launch_id = done["launch_id"]
    assert all(received(sim, s, launch_id) == 1 for s in good)
    assert all(sim.attempts(s) == 1 and not sim.messages(s) for s in junk_403 + junk_400)
    assert records(db, launch_id) == {"sent:": 5, "dropped:serviceProviderErrors": 160}
    with db.read() as conn:
        active = conn.execute(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.partner_id == tenant.partner_id, Subscriber.active.is_(True))
        ).scalar_one()
    assert active == 165  # dropped, not deactivated: only 404/410 say a subscription is gone


def test_imported_subscriptions_are_vouched_for(
    client: httpx.Client,
    tenant,
    sim: PushServiceSimulator,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator vouches for an import: if its subscriptions refuse the partner's
    key (the wrong pair was imported), the launch pauses instead of burning them."""
    monkeypatch.setenv("PUSHCAMP_PUSH_ALLOWED_HOSTS", "127.0.0.1")  # for the importer
    other_key = key_pair()[0]
    subs = [sim.subscribe(other_key) for _ in range(60)]
    lines = "".join(json.dumps({**s.to_json(), "language": "en"}) + "\n" for s in subs)
    imported = run_cli(
        "subscribers", "import", tenant.partner_id, "-", stdin=lines, database_url=database_url
    )
    assert "imported 60 of 60 lines" in imported.stdout
    campaign_id = create_campaign(client, tenant)
    launch(client, tenant, campaign_id)
    [paused] = wait_for_launches(client, tenant, campaign_id)
    assert paused["status"] == "Paused" and "403" in paused["paused_reason"]
    assert all(not sim.messages(s) for s in subs)


def test_launch_commands_exit_codes(client: httpx.Client, tenant, database_url: str) -> None:
    unknown = str(10**12 + secrets.randbelow(1000))
    show = run_cli("launches", "show", unknown, database_url=database_url, check=False)
    assert show.returncode == 3 and f"no launch {unknown}" in show.stderr
    resume = run_cli("launches", "resume", unknown, database_url=database_url, check=False)
    assert resume.returncode == 3 and f"no launch {unknown}" in resume.stderr
    campaign_id = create_campaign(client, tenant)
    launch(client, tenant, campaign_id)  # nobody to send to: Sent at once
    [done] = wait_for_launches(client, tenant, campaign_id)
    shown = json.loads(
        run_cli("launches", "show", str(done["launch_id"]), database_url=database_url).stdout
    )
    assert shown["launch_id"] == done["launch_id"] and shown["status"] == "Sent"
    not_paused = run_cli(
        "launches", "resume", str(done["launch_id"]), database_url=database_url, check=False
    )
    assert not_paused.returncode == 2 and "is Sent, not Paused" in not_paused.stderr
