"""The sender's own HTTP/1.1 client against raw servers on 127.0.0.1 that answer with
exact bytes: TLS with the certificate checked, keep-alive only when the answer allows
it, answers without a length, unreadable answers, and the request as it is written on
the wire (read back with the standard library's HTTP parser, not ours)."""

from __future__ import annotations

import asyncio
import datetime
import email.parser
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pushcamp.webpush import PushResult, Rejected, Sent, Transient, Vapid, WebPushSender
from tests.integration.webpush.test_webpush_redirects import subscription_at

Answer = Callable[[int], bytes]  # request number (from 0) -> the raw answer


@dataclass
class Raw:
    url: str = ""
    connections: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@asynccontextmanager
async def raw_server(
    answer: Answer, *, close_after: bool = False, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Raw]:
    """Reads HTTP/1.1 requests (header block, then Content-Length bytes), records them,
    writes ``answer(n)`` as is; ``close_after`` closes the connection after answering."""
    seen = Raw()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, _, rest = head.decode("latin-1").partition("\r\n")
                headers = dict(email.parser.Parser().parsestr(rest).items())
                body = await reader.readexactly(int(headers.get("Content-Length", "0")))
                seen.requests.append((line, headers, body))
                writer.write(answer(len(seen.requests) - 1))
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    seen.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield seen
    finally:
        server.close()


CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


async def push(url: str, count: int = 1, **kwargs: object) -> list[PushResult]:
    vapid = Vapid.generate("mailto:ops@pushcamp.dev")
    sub = subscription_at(f"{url}/push/abc?x=1")
    async with WebPushSender(vapid, max_attempts=1, **kwargs) as sender:  # type: ignore[arg-type]
        return [await sender.send(sub, b"hello") for _ in range(count)]


def test_the_request_on_the_wire_is_plain_http_1_1() -> None:
    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: CREATED) as server:
            return server, await push(server.url, 3)

    server, results = asyncio.run(main())
    assert [r.outcome for r in results] == [Sent(201)] * 3
    assert server.connections == 1  # kept alive
    line, headers, body = server.requests[0]
    assert line == "POST /push/abc?x=1 HTTP/1.1"
    assert headers["Host"] == server.url.removeprefix("http://")
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["TTL"].isdigit() and headers["Authorization"].startswith("vapid t=")
    assert int(headers["Content-Length"]) == len(body) > 86  # header, record, tag


def test_connection_close_is_honoured() -> None:
    closing = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: closing, close_after=True) as server:
            return server, await push(server.url, 3)

    server, results = asyncio.run(main())
    assert [r.outcome for r in results] == [Sent(201)] * 3
    assert server.connections == 3


def test_an_answer_ended_by_the_connection_is_read_whole() -> None:
    answer = b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nthe body until the end"

    async def main() -> list[PushResult]:
        async with raw_server(lambda _n: answer, close_after=True) as server:
            return await push(server.url)

    (result,) = asyncio.run(main())
    assert result.outcome == Transient(500, "HTTP 500")
    assert result.detail == "the body until the end"


@pytest.mark.parametrize(
    ("answer", "close"),
    [
        (b"garbage\r\n\r\n", False),  # the server keeps the connection: we must end it
        (b"HTTP/1.1 2x1 Nope\r\n\r\n", False),
        (b"HTTP/1.1 201 Created\r\n", True),  # cut in the middle of the headers
    ],
)
def test_an_unreadable_or_cut_answer_is_transient_not_a_hang(answer: bytes, close: bool) -> None:
    async def main() -> list[PushResult]:
        async with raw_server(lambda _n: answer, close_after=close) as server:
            return await push(server.url, timeout=5.0)

    (result,) = asyncio.run(main())
    assert isinstance(result.outcome, Transient)
    assert result.outcome.reason != "timeout"


def test_a_redirect_is_returned_not_followed() -> None:
    answer = b"HTTP/1.1 307 Moved\r\nLocation: http://elsewhere.test/x\r\nContent-Length: 0\r\n\r\n"

    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: answer) as server:
            return server, await push(server.url)

    server, (result,) = asyncio.run(main())
    assert isinstance(result.outcome, Rejected) and result.outcome.status == 307
    assert len(server.requests) == 1


def _tls_pair(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA file and a server context whose certificate that CA signed for 127.0.0.1."""
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushcamp test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


def test_tls_with_a_trusted_certificate_delivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, context = _tls_pair(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # OpenSSL's default store, for this test

    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: CREATED, tls=context) as server:
            return server, await push(server.url, 2)

    server, results = asyncio.run(main())
    assert [r.outcome for r in results] == [Sent(201)] * 2
    assert server.connections == 1
    assert server.requests[0][0] == "POST /push/abc?x=1 HTTP/1.1"


def test_tls_with_an_untrusted_certificate_sends_nothing(tmp_path: Path) -> None:
    _ca_file, context = _tls_pair(tmp_path)  # the CA is not in the default store

    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: CREATED, tls=context) as server:
            return server, await push(server.url)

    server, (result,) = asyncio.run(main())
    assert isinstance(result.outcome, Transient)
    assert server.requests == []


def test_the_client_runs_on_uvloop_too() -> None:
    uvloop = pytest.importorskip("uvloop")  # the loop uvicorn gives pushcamp serve

    async def main() -> tuple[Raw, list[PushResult]]:
        async with raw_server(lambda _n: CREATED) as server:
            return server, await push(server.url, 3)

    server, results = uvloop.run(main())
    assert [r.outcome for r in results] == [Sent(201)] * 3
    assert server.connections == 1


def test_a_session_given_by_the_caller_is_used_and_left_open() -> None:
    import aiohttp

    async def main() -> tuple[Raw, list[PushResult], bool]:
        async with (
            raw_server(lambda _n: CREATED) as server,
            aiohttp.ClientSession(headers={"X-Mine": "yes"}) as session,
        ):
            results = await push(server.url, 2, session=session)
            return server, results, session.closed

    server, results, closed = asyncio.run(main())
    assert [r.outcome for r in results] == [Sent(201)] * 2
    assert [headers.get("X-Mine") for _line, headers, _body in server.requests] == ["yes"] * 2
    assert not closed
