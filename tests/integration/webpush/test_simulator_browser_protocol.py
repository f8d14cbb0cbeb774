"""The simulator's browser side: Mozilla's WebSocket push protocol (the one Firefox speaks
to its push server), played here by the ``websockets`` client, with the messages
encrypted and decrypted by ``http_ece`` (neither is pushcamp's code). The real browser
is in tests/e2e; these pin the protocol's rules one by one."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from pushcamp.testing.simulator import PushServiceSimulator
from pushcamp.webpush import PushOptions, Vapid
from pushcamp.webpush._base64 import b64url_decode, b64url_encode


class Browser:
    """The push client of a browser: its uaid, and per channel the keys it made."""

    def __init__(self, sim: PushServiceSimulator) -> None:
        self.sim = sim
        self.uaid: str | None = None
        self.keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()

    def connect(self, uaid: str | None = None) -> dict[str, Any]:
        self.ws = self._stack.enter_context(
            connect(self.sim.push_server_url, subprotocols=[Subprotocol("push-notification")])
        )
        assert self.ws.subprotocol == "push-notification"
        hello: dict[str, Any] = {"messageType": "hello", "use_webpush": True, "broadcasts": {}}
        if uaid or self.uaid:
            hello["uaid"] = uaid or self.uaid
        answer = self.call(hello)
        self.uaid = answer["uaid"]
        return answer

    def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = 10) -> dict[str, Any]:
        assert self.ws is not None
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return self.receive()

    def register(self, channel_id: str, key: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"messageType": "register", "channelID": channel_id}
        if key is not None:
            body["key"] = key
        answer = self.call(body)
        self.keys[channel_id] = (ec.generate_private_key(ec.SECP256R1()), b"0123456789abcdef")
        return answer

    def encrypt_for(self, channel_id: str, plaintext: bytes) -> bytes:
        """What an application server sends (http_ece, not pushcamp's code)."""
        key, auth = self.keys[channel_id]
        return bytes(
            http_ece.encrypt(
                plaintext,
                private_key=ec.generate_private_key(ec.SECP256R1()),
                dh=key.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                ),
                auth_secret=auth,
                version="aes128gcm",
            )
        )

    def decrypt(self, notification: dict[str, Any]) -> bytes:
        key, auth = self.keys[notification["channelID"]]
        return bytes(
            http_ece.decrypt(
                b64url_decode(notification["data"]),
                private_key=key,
                auth_secret=auth,
                version="aes128gcm",
            )
        )

    def close(self) -> None:
        self._stack.close()
        self.ws = None


@pytest.fixture
def browser(push_simulator: PushServiceSimulator) -> Iterator[Browser]:
    b = Browser(push_simulator)
    try:
        yield b
    finally:
        b.close()


def push(endpoint: str, vapid: Vapid, body: bytes, **headers: str) -> httpx.Response:
    sent = PushOptions(ttl=60).headers()
    sent["Authorization"] = vapid.authorization(endpoint)
    sent.update(headers)
    return httpx.post(endpoint, content=body, headers={k: v for k, v in sent.items() if v})


def wait(probe: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return value


def test_hello_register_push_ack(
    push_simulator: PushServiceSimulator, browser: Browser, vapid: Vapid
) -> None:
    hello = browser.connect()
    assert hello == {
        "messageType": "hello",
        "uaid": hello["uaid"],
        "status": 200,
        "use_webpush": True,
    }
    assert push_simulator.browser_status()["connected"] == 1
    registered = browser.register("chan-1", vapid.public_key)
    assert registered["messageType"] == "register" and registered["status"] == 200
    assert registered["channelID"] == "chan-1"
    endpoint = registered["pushEndpoint"]
    assert endpoint.startswith(f"{push_simulator.url}/push/")

    answer = push(endpoint, vapid, browser.encrypt_for("chan-1", b'{"title":"hi"}'))
    assert answer.status_code == 201, answer.text
    notification = browser.receive()
    assert notification["messageType"] == "notification"
    assert notification["channelID"] == "chan-1"
    assert notification["headers"] == {"encoding": "aes128gcm"}
    assert browser.decrypt(notification) == b'{"title":"hi"}'  # the bytes as sent
    assert push_simulator.acks(endpoint) == []  # not acknowledged yet

    browser.send(
        {
            "messageType": "ack",
            "updates": [{"channelID": "chan-1", "version": notification["version"], "code": 100}],
        }
    )
    acks = wait(lambda: push_simulator.acks(endpoint), "the ack to be recorded")
    assert [(a.version, a.code, a.meaning) for a in acks] == [
        (notification["version"], 100, "delivered")
    ]
    # A second push gets a version of its own; a decryption failure is recorded as such.
    push(endpoint, vapid, browser.encrypt_for("chan-1", b"again"))
    second = browser.receive()
    assert second["version"] != notification["version"]
    browser.send(
        {
            "messageType": "ack",
            "updates": [{"channelID": "chan-1", "version": second["version"], "code": 101}],
        }
    )
    wait(lambda: len(push_simulator.acks(endpoint)) == 2, "the second ack")
    assert push_simulator.acks(endpoint)[1].meaning == "decryption failed"
    # An ack naming a version the simulator never sent is not recorded.
    browser.send(
        {
            "messageType": "ack",
            "updates": [{"channelID": "chan-1", "version": "made-up", "code": 100}],
        }
    )
    assert browser.call({}) == {}  # a ping, answered in order after the ack
    assert len(push_simulator.acks(endpoint)) == 2
    # Over HTTP as well.
    listed = httpx.get(f"{push_simulator.url}/browser/subscriptions").json()["subscriptions"]
    assert [(s["endpoint"], [a["code"] for a in s["acks"]]) for s in listed] == [
        (endpoint, [100, 101])
    ]


def test_push_signed_with_another_key_is_refused_and_never_forwarded(
    push_simulator: PushServiceSimulator, browser: Browser, vapid: Vapid
) -> None:
    browser.connect()
    endpoint = browser.register("c", vapid.public_key)["pushEndpoint"]
    other = Vapid.generate("mailto:other@pushcamp.dev")
    body = browser.encrypt_for("c", b"x")
    assert push(endpoint, other, body).status_code == 403
    assert push(endpoint, vapid, body, Authorization="").status_code == 401
    assert push(endpoint, vapid, body, TTL="").status_code == 400
    assert browser.call({}) == {}  # nothing was forwarded before the ping's answer
    assert push_simulator.browser_subscription(endpoint).messages == []


def test_a_key_that_is_not_a_p256_point_is_refused(browser: Browser) -> None:
    browser.connect()
    answer = browser.register("c", b64url_encode(b"\x04" + b"\x01" * 64))
    assert answer["status"] == 400 and "pushEndpoint" not in answer


def test_unregister_makes_later_pushes_gone(
    push_simulator: PushServiceSimulator, browser: Browser, vapid: Vapid
) -> None:
    browser.connect()
    endpoint = browser.register("c", vapid.public_key)["pushEndpoint"]
    answer = browser.call({"messageType": "unregister", "channelID": "c", "code": 200})
    assert answer == {"messageType": "unregister", "channelID": "c", "status": 200}
    assert not push_simulator.browser_subscription(endpoint).active
    assert push(endpoint, vapid, browser.encrypt_for("c", b"x")).status_code == 410
    assert push(endpoint + "x", vapid, b"x").status_code == 404


def test_pushes_wait_for_an_offline_browser_and_its_uaid_is_kept(
    push_simulator: PushServiceSimulator, browser: Browser, vapid: Vapid
) -> None:
    uaid = browser.connect()["uaid"]
    endpoint = browser.register("c", vapid.public_key)["pushEndpoint"]
    browser.close()
    wait(lambda: push_simulator.browser_status()["connected"] == 0, "the disconnection")
    assert push(endpoint, vapid, browser.encrypt_for("c", b"while away")).status_code == 201
    assert (
        push(endpoint, vapid, browser.encrypt_for("c", b"gone at once"), TTL="0").status_code == 201
    )

    assert browser.connect(uaid)["uaid"] == uaid  # known: kept
    held = browser.receive()
    assert browser.decrypt(held) == b"while away"  # the TTL=0 one was not kept
    assert browser.call({}) == {}


def test_an_unknown_uaid_gets_a_new_one(browser: Browser) -> None:
    assert browser.connect("0" * 32)["uaid"] != "0" * 32


def test_register_before_hello_closes_the_connection(
    push_simulator: PushServiceSimulator,
) -> None:
    with connect(
        push_simulator.push_server_url, subprotocols=[Subprotocol("push-notification")]
    ) as ws:
        ws.send(json.dumps({"messageType": "register", "channelID": "c"}))
        with pytest.raises(Exception, match="4000|hello first|closed"):
            ws.recv(timeout=5)
    assert push_simulator.browser_subscriptions() == []


def test_gate_page_and_page_reports(push_simulator: PushServiceSimulator) -> None:
    url = push_simulator.gate_url("http://127.0.0.1:9/demo/1?x=</script>")
    page = httpx.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '</script>"' not in page.text and "<\\/script>" in page.text
    assert (
        httpx.get(f"{push_simulator.url}/browser/gate?next=javascript:alert(1)").status_code == 400
    )

    reports = push_simulator.reports_url
    preflight = httpx.options(reports, headers={"Origin": "http://127.0.0.1:1"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    push_simulator.ask_page("subscribe")
    first = httpx.post(reports, content=json.dumps({"page": "demo", "n": 1}))
    assert first.json() == {"action": "subscribe"}
    assert httpx.post(reports, content=json.dumps({"page": "demo", "n": 2})).json() == {
        "action": None
    }
    assert httpx.post(reports, content="[1]").status_code == 400
    assert httpx.post(reports, content="x" * 70_000).status_code == 413
    assert [r.data["n"] for r in push_simulator.page_reports()] == [1, 2]
