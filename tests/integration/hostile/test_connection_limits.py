"""Header and connection limits, tried with raw sockets against a real server process:
memory stays flat whatever a client sends, slow or idle connections are closed after
their deadline, and connections beyond the cap get a clean 503."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Tenant
from tests.integration.hostile.conftest import (
    BODY_TIMEOUT,
    CAPPED_MAX_CONNECTIONS,
    HEADER_TIMEOUT,
    KEEP_ALIVE,
    LoggedServer,
)
from tests.integration.hostile.rawhttp import (
    address,
    connect,
    exchange,
    memory_kib,
    metric_total,
    parse_response,
    read_until_closed,
    request_bytes,
    send_quietly,
)

MIB = 1024 * 1024
# Time the server is given past a deadline before the test calls it a failure.
SLACK = 5.0


@contextlib.contextmanager
def open_sockets(url: str, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(connect(url))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def big_header_request(host: str, size: int) -> bytes:
    return request_bytes("GET", "/v1/single/1", host, {"Authorization": "Bearer " + "a" * size})


# --- header size ----------------------------------------------------------------------------


def test_headers_over_16_kib_get_431_and_are_never_read_whole(guarded: LoggedServer) -> None:
    host = "127.0.0.1"
    with connect(guarded.url) as sock:
        request = big_header_request(host, 16 * MIB)
        sent = 0
        for start in range(0, len(request), 64 * 1024):  # at most 256 chunks
            if not send_quietly(sock, request[start : start + 64 * 1024]):
                break
            sent += 64 * 1024
        raw, closed = read_until_closed(sock, within=10)
    assert closed
    assert sent < 16 * MIB, "the server took a 16 MB header whole"
    if raw:  # the answer may be lost in the reset; when it arrives it is a 431
        response = parse_response(raw)
        assert response.status == 431
        assert response.json() == {"message": "Request Header Fields Too Large"}


def test_a_header_block_just_over_the_cap_gets_431(guarded: LoggedServer) -> None:
    response = exchange(guarded.url, big_header_request("127.0.0.1", 17 * 1024))
    assert response.status == 431
    assert response.headers["content-type"] == "application/json"


def test_headers_under_the_cap_are_answered(guarded: LoggedServer) -> None:
    # A 15 KiB token is read and checked (401: no such token), not refused as too large.
    response = exchange(guarded.url, big_header_request("127.0.0.1", 15 * 1024))
    assert response.status == 401


def test_memory_stays_flat_with_20_connections_sending_8_mb_headers(
    guarded: LoggedServer,
) -> None:
    before = memory_kib(guarded.pid)
    chunk = b"X-Filler: " + b"a" * (64 * 1024 - 12) + b"\r\n"
    accepted = []
    with open_sockets(guarded.url, 20) as socks:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for sock in socks:
            taken = 0
            for _ in range(8 * MIB // len(chunk)):  # 128 chunks of 64 KiB: 8 MB
                if not send_quietly(sock, chunk):
                    break
                taken += len(chunk)
            accepted.append(taken)
        during = memory_kib(guarded.pid)
        closed = [read_until_closed(sock, within=10)[1] for sock in socks]
    assert all(closed), "a connection sending endless headers was kept open"
    assert max(accepted) < 8 * MIB, "a connection's 8 MB of headers was taken whole"
    grown_mib = (during["VmHWM"] - before["VmHWM"]) / 1024
    assert grown_mib < 16, f"the server's peak memory grew by {grown_mib:.0f} MiB"


# --- deadlines ------------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_header_deadline(
    guarded: LoggedServer,
) -> None:
    with connect(guarded.url) as sock:
        raw, closed = read_until_closed(sock, within=HEADER_TIMEOUT + SLACK)
    assert closed and raw == b""


def test_unfinished_headers_are_closed_after_the_header_deadline(guarded: LoggedServer) -> None:
    with connect(guarded.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        raw, closed = read_until_closed(sock, within=HEADER_TIMEOUT + SLACK)
    assert closed and raw == b""


def test_headers_dribbled_a_byte_at_a_time_do_not_extend_the_deadline(
    guarded: LoggedServer,
) -> None:
    """A slowloris client: one byte every 0.2 s keeps the socket busy, never the request
    alive past the header deadline."""
    request = request_bytes("GET", "/healthz", "127.0.0.1") + b"X" * 1000
    closed = False
    with connect(guarded.url) as sock:
        for i in range(int((HEADER_TIMEOUT + SLACK) / 0.2)):  # bounded: at most ~32 bytes
            if not send_quietly(sock, request[i : i + 1]):
                closed = True
                break
            _, closed = read_until_closed(sock, within=0.2)
            if closed:
                break
    assert closed, "a client dribbling its headers kept the connection open"


def test_a_body_that_stalls_is_closed_after_the_body_deadline_with_no_error_logged(
    guarded: LoggedServer, tenant: Tenant
) -> None:
    offset = guarded.log_offset()
    with connect(guarded.url) as sock:
        head = request_bytes(
            "POST",
            "/v1/single",
            "127.0.0.1",
            {**tenant.auth, "Content-Type": "application/json", "Content-Length": "100"},
        )
        sock.sendall(head + b'{"partner_id": ')
        raw, closed = read_until_closed(sock, within=BODY_TIMEOUT + SLACK)
    assert closed and raw == b""
    metrics = httpx.get(guarded.url + "/metrics", timeout=10).text
    assert metric_total(metrics, "/v1/single", "5") == 0
    assert guarded.errors_since(offset) == []


def test_an_idle_keep_alive_connection_is_closed_after_a_few_seconds(
    guarded: LoggedServer,
) -> None:
    with connect(guarded.url) as sock:
        sock.sendall(request_bytes("GET", "/healthz", "127.0.0.1", close=False))
        raw, closed = read_until_closed(sock, within=KEEP_ALIVE + SLACK)
    assert closed
    assert parse_response(raw).status == 200


def test_a_keep_alive_connection_serves_several_requests_in_time(guarded: LoggedServer) -> None:
    with connect(guarded.url) as sock:
        for _ in range(3):
            sock.sendall(request_bytes("GET", "/healthz", "127.0.0.1", close=False))
            raw = b""
            while b'"ok"' not in raw and len(raw) < 4096:  # bounded by size and timeout
                chunk = sock.recv(4096)
                assert chunk, "the server closed a keep-alive connection in use"
                raw += chunk
            assert parse_response(raw).status == 200


# --- many connections -----------------------------------------------------------------------


def test_connections_beyond_the_cap_get_503_at_once(capped: LoggedServer) -> None:
    with open_sockets(capped.url, CAPPED_MAX_CONNECTIONS) as idle:
        # Every idle connection is held: the server has answered none of them.
        for sock in idle[:3]:
            assert read_until_closed(sock, within=0.2) == (b"", False)
        for _ in range(5):
            response = exchange(capped.url, request_bytes("GET", "/healthz", "127.0.0.1"))
            assert response.status == 503
            assert response.json() == {"message": "Service Unavailable"}
            assert response.headers["retry-after"] == "1"
    # The idle ones gone, the server answers again (the count drops as they close).
    statuses = []
    for _ in range(50):  # bounded
        response = exchange(capped.url, request_bytes("GET", "/healthz", "127.0.0.1"))
        statuses.append(response.status)
        if response.status == 200:
            break
    assert statuses[-1] == 200


def test_3000_idle_connections_are_not_all_held(capped: LoggedServer) -> None:
    """Beyond the cap, a connection is closed as soon as it is accepted."""
    held = 0
    socks: list[socket.socket] = []
    try:
        for _ in range(3000):
            try:
                sock = socket.create_connection(address(capped.url), timeout=5)
            except OSError:
                continue  # the backlog is full: refused, which is fine too
            socks.append(sock)
        for sock in socks:
            _, closed = read_until_closed(sock, within=0.05 if held < 40 else 0.01)
            if not closed:
                held += 1
    finally:
        for sock in socks:
            sock.close()
    assert held <= CAPPED_MAX_CONNECTIONS


def test_a_create_is_answered_while_200_slow_clients_are_connected(
    guarded: LoggedServer, tenant: Tenant
) -> None:
    with open_sockets(guarded.url, 200) as slow:
        for sock in slow:  # each one has sent half a request and stalls
            sock.sendall(b"POST /v1/single HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        response = httpx.post(
            guarded.url + "/v1/single",
            headers=tenant.auth,
            json=tenant.body(title="while slow clients wait", language="en_US"),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        assert response.json()["success"] is True


@pytest.mark.parametrize("path", ["/healthz", "/v1/single/1"])
def test_plain_requests_still_work(guarded: LoggedServer, path: str) -> None:
    response = exchange(guarded.url, request_bytes("GET", path, "127.0.0.1"))
    assert response.status in (200, 401)
