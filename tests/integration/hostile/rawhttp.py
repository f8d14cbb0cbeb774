"""Raw-socket HTTP/1.1 clients for the hostile-client tests: every wait is bounded."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def request_bytes(
    method: str,
    path: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    close: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection, and whether it did
    close it within ``within`` seconds (a reset counts as closed)."""
    deadline = time.monotonic() + within
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send, and say whether the server still took it (False once it has closed)."""
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split(" ")[1]), headers, body)


def exchange(url: str, data: bytes, within: float = 10.0) -> RawResponse:
    """Send one whole request (with ``Connection: close``) and read its answer."""
    with connect(url) as sock:
        sock.sendall(data)
        raw, closed = read_until_closed(sock, within)
    assert closed, f"the server kept the connection open after answering: {raw[:200]!r}"
    return parse_response(raw)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


def metric_total(metrics_text: str, route: str, status_prefix: str) -> float:
    """The sum of pushcamp_http_requests_total for a route and a status class ("5")."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith("pushcamp_http_requests_total{"):
            continue
        labels, _, value = line.partition("} ")
        if f'route="{route}"' in labels and f'status="{status_prefix}' in labels:
            total += float(value)
    return total
