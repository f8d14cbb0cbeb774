"""The simulator's own contract: it behaves like a strict push service (checks VAPID,
headers, size and encryption, and says why it refused), its control API works over
HTTP as well as from Python, and it runs in a thread, in an event loop or as a process."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pushcamp.testing.simulator import (
    Fault,
    PushServiceSimulator,
    SimulatorProcess,
    subscription_id,
)
from pushcamp.webpush import PushOptions, Subscription, Vapid, WebPushSender, encrypt


def _headers(vapid: Vapid, endpoint: str, **override: str) -> dict[str, str]:
    headers = PushOptions().headers()
    headers["Authorization"] = vapid.authorization(endpoint)
    headers.update(override)
    return {k: v for k, v in headers.items() if v}


def test_subscription_over_http_has_the_push_subscription_shape(
    push_simulator: PushServiceSimulator,
) -> None:
    data = httpx.post(f"{push_simulator.url}/subscriptions", json={}).json()
    assert set(data) == {"endpoint", "expirationTime", "keys"}
    assert set(data["keys"]) == {"p256dh", "auth"}
    sub = Subscription.from_json(data)  # valid keys, usable by any sender
    assert sub.endpoint.startswith(f"{push_simulator.url}/push/")
    many = httpx.post(f"{push_simulator.url}/subscriptions", json={"count": 3}).json()
    assert len({s["endpoint"] for s in many["subscriptions"]}) == 3


def test_accepts_a_correct_push_and_serves_it_back(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = Subscription.from_json(httpx.post(f"{push_simulator.url}/subscriptions").json())
    response = httpx.post(
        sub.endpoint,
        content=encrypt(b'{"title":"hello"}', sub),
        headers=_headers(vapid, sub.endpoint, Topic="t1"),
    )
    assert response.status_code == 201 and response.headers["Location"]
    sid = subscription_id(sub.endpoint)
    (message,) = httpx.get(f"{push_simulator.url}/subscriptions/{sid}/messages").json()["messages"]
    assert message["payload"] == '{"title":"hello"}'
    assert message["topic"] == "t1" and message["ttl"] == 86400
    info = httpx.get(f"{push_simulator.url}/subscriptions/{sid}").json()
    assert info["attempts"] == 1 and info["received"] == 1 and info["active"] is True


@pytest.mark.parametrize(
    ("override", "status", "reason"),
    [
        ({"Authorization": ""}, 401, "VAPID"),
        ({"Authorization": "WebPush abc"}, 401, "VAPID"),
        ({"TTL": ""}, 400, "TTL"),
        ({"TTL": "-5"}, 400, "TTL"),
        ({"Urgency": "asap"}, 400, "Urgency"),
        ({"Topic": "has spaces"}, 400, "Topic"),
        ({"Topic": "x" * 33}, 400, "Topic"),
        ({"Content-Encoding": "aesgcm"}, 400, "Content-Encoding"),
    ],
)
def test_refuses_bad_requests_with_a_reason(
    push_simulator: PushServiceSimulator,
    vapid: Vapid,
    override: dict[str, str],
    status: int,
    reason: str,
) -> None:
    sim_sub = push_simulator.subscribe()
    sub = sim_sub.subscription()
    response = httpx.post(
        sub.endpoint, content=encrypt(b"x", sub), headers=_headers(vapid, sub.endpoint, **override)
    )
    assert response.status_code == status
    assert reason in response.text
    assert push_simulator.messages(sim_sub) == []


def test_refuses_a_token_for_another_audience(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe().subscription()
    headers = _headers(vapid, sub.endpoint)
    headers["Authorization"] = vapid.authorization("https://fcm.googleapis.com/fcm/send/x")
    response = httpx.post(sub.endpoint, content=encrypt(b"x", sub), headers=headers)
    assert response.status_code == 401 and "aud" in response.text


def test_refuses_a_message_it_cannot_decrypt_and_one_too_large(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub, other = push_simulator.subscribe(), push_simulator.subscribe()
    # Encrypted for another subscriber: decryption must fail.
    wrong = httpx.post(
        sub.endpoint,
        content=encrypt(b"x", other.subscription()),
        headers=_headers(vapid, sub.endpoint),
    )
    assert wrong.status_code == 400 and "decryption" in wrong.text
    huge = httpx.post(sub.endpoint, content=b"x" * 4097, headers=_headers(vapid, sub.endpoint))
    assert huge.status_code == 413


def test_decryption_checking_can_be_switched_off(vapid: Vapid) -> None:
    with PushServiceSimulator(decrypt=False) as sim:
        sim_sub, other = sim.subscribe(), sim.subscribe()
        response = httpx.post(
            sim_sub.endpoint,
            content=encrypt(b"x", other.subscription()),  # undecryptable, yet accepted
            headers=_headers(vapid, sim_sub.endpoint),
        )
        assert response.status_code == 201
        (message,) = sim.messages(sim_sub)
        assert message.payload is None and message.size > 0


def test_faults_over_http_per_subscription_and_as_a_rate(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    url = push_simulator.url
    data = httpx.post(f"{url}/subscriptions").json()
    sub, sid = Subscription.from_json(data), subscription_id(data["endpoint"])
    fault = {"status": 429, "retry_after": "9", "times": 2}
    assert httpx.post(f"{url}/subscriptions/{sid}/faults", json=fault).status_code == 204

    def push() -> httpx.Response:
        return httpx.post(
            sub.endpoint, content=encrypt(b"x", sub), headers=_headers(vapid, sub.endpoint)
        )

    first, second, third = push(), push(), push()
    assert (first.status_code, first.headers["Retry-After"]) == (429, "9")
    assert second.status_code == 429 and third.status_code == 201

    assert httpx.post(f"{url}/faults", json={"status": 503, "rate": 1.0}).status_code == 204
    assert push().status_code == 503
    assert httpx.delete(f"{url}/faults").status_code == 204
    assert push().status_code == 201
    assert httpx.delete(f"{url}/subscriptions/{sid}").status_code == 204
    assert push().status_code == 410
    stats = httpx.get(f"{url}/stats").json()
    assert stats["statuses"] == {"201": 2, "410": 1, "429": 2, "503": 1}


def test_unknown_subscription_is_404(push_simulator: PushServiceSimulator) -> None:
    assert httpx.post(f"{push_simulator.url}/push/nope", content=b"x").status_code == 404
    assert httpx.get(f"{push_simulator.url}/subscriptions/nope/messages").status_code == 404


def test_runs_inside_the_callers_event_loop(vapid: Vapid) -> None:
    async def main() -> int:
        async with PushServiceSimulator() as sim:
            sub = sim.subscribe()
            sim.inject(sub, Fault.gone())
            async with WebPushSender(vapid) as sender:
                gone = await sender.send(sub.subscription(), b"x")
            return gone.outcome.status  # type: ignore[attr-defined, no-any-return]

    assert asyncio.run(main()) == 410


def test_runs_as_a_separate_process(vapid: Vapid) -> None:
    with SimulatorProcess() as process:
        client = process.client
        data = client.subscribe()
        client.inject(subscription_id(data["endpoint"]), Fault.server_error(502))

        async def main() -> list[int | None]:
            async with WebPushSender(vapid, max_attempts=1) as sender:
                statuses = []
                for _ in range(2):
                    result = await sender.send(data, b'{"title":"from afar"}')
                    statuses.append(result.outcome.status)  # type: ignore[attr-defined]
                return statuses

        assert asyncio.run(main()) == [502, 201]
        (message,) = client.messages(subscription_id(data["endpoint"]))
        assert message["payload"] == '{"title":"from afar"}'
        assert client.stats()["accepted"] == 1
    assert process.proc is None


def test_a_subscription_bound_to_a_key_refuses_every_other_key_with_403(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    url = push_simulator.url
    other = Vapid.generate("mailto:push-ops@pushcamp.dev")
    created = httpx.post(f"{url}/subscriptions", json={"application_server_key": vapid.public_key})
    assert created.status_code == 201
    sub, sid = Subscription.from_json(created.json()), subscription_id(created.json()["endpoint"])
    info = httpx.get(f"{url}/subscriptions/{sid}").json()
    assert info["application_server_key"] == vapid.public_key

    def push(signer: Vapid) -> httpx.Response:
        return httpx.post(
            sub.endpoint, content=encrypt(b"x", sub), headers=_headers(signer, sub.endpoint)
        )

    refused = push(other)
    assert refused.status_code == 403 and "VAPID key" in refused.text
    assert push(vapid).status_code == 201
    # The same key with base64 padding is the same key.
    padded = httpx.post(
        f"{url}/subscriptions",
        json={"count": 2, "application_server_key": vapid.public_key + "="},
    ).json()["subscriptions"]
    for data in padded:
        bound = Subscription.from_json(data)
        assert (
            httpx.post(
                bound.endpoint,
                content=encrypt(b"y", bound),
                headers=_headers(other, bound.endpoint),
            ).status_code
            == 403
        )
        assert (
            httpx.post(
                bound.endpoint,
                content=encrypt(b"y", bound),
                headers=_headers(vapid, bound.endpoint),
            ).status_code
            == 201
        )
    assert len(push_simulator.messages(sid)) == 1


@pytest.mark.parametrize(
    "key",
    ["", "not base64!", "AAAA", "B" + "A" * 85, 42],
)
def test_an_application_server_key_that_is_not_a_p256_point_is_400(
    push_simulator: PushServiceSimulator, key: object
) -> None:
    for body in ({"application_server_key": key}, {"application_server_key": key, "count": 3}):
        answer = httpx.post(f"{push_simulator.url}/subscriptions", json=body)
        assert answer.status_code == 400 and answer.json()["error"]
    assert push_simulator.stats()["subscriptions"] == 0
    with pytest.raises(ValueError):
        push_simulator.subscribe(application_server_key="AAAA")


def test_each_message_keeps_the_request_as_it_arrived(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    """Body and headers over the control API: enough to check a message with other
    libraries than pushcamp's (here http_ece decrypts what the simulator recorded)."""
    import base64

    import http_ece

    sim_sub = push_simulator.subscribe(vapid.public_key)
    sub = sim_sub.subscription()
    headers = _headers(vapid, sub.endpoint, Topic="raw")
    body = encrypt(b'{"title":"raw"}', sub)
    assert httpx.post(sub.endpoint, content=body, headers=headers).status_code == 201
    url = f"{push_simulator.url}/subscriptions/{sim_sub.id}/messages"
    (message,) = httpx.get(url).json()["messages"]
    raw = base64.urlsafe_b64decode(message["body_b64"] + "=" * (-len(message["body_b64"]) % 4))
    assert raw == body
    assert message["headers"]["Authorization"] == headers["Authorization"]
    assert message["headers"]["Topic"] == "raw"
    plain = http_ece.decrypt(
        raw, private_key=sim_sub.private_key, auth_secret=sim_sub.auth, version="aes128gcm"
    )
    assert plain == b'{"title":"raw"}'
    (kept,) = push_simulator.messages(sim_sub)
    assert kept.body == body and kept.headers["Content-Encoding"] == "aes128gcm"
