"""Webhook fixtures: a pushcamp server of this module's own whose webhook retries are
short (PUSHCAMP_WEBHOOK_BACKOFF_SECONDS) and which may post to 127.0.0.1 over plain
http (PUSHCAMP_WEBHOOK_ALLOWED_HOSTS), and real aiohttp receivers on loopback that
answer as a test tells them to, recording every request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.conftest import fresh_database

BACKOFF = (0.4, 0.8, 1.2)
MAX_AGE = 5.0
WEBHOOK_ENV = {
    "PUSHCAMP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "PUSHCAMP_WEBHOOK_BACKOFF_SECONDS": ",".join(str(b) for b in BACKOFF),
    "PUSHCAMP_WEBHOOK_MAX_AGE_SECONDS": str(MAX_AGE),
    "PUSHCAMP_WEBHOOK_POLL_SECONDS": "0.1",
}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own. On the session's database, the session's server
    (its own webhook dispatcher, default settings: 127.0.0.1 not allowed, retries minutes
    apart) would take these tests' events too and push their next try past the tests'
    waits — as it did in the full suite."""
    with fresh_database(tmp_path_factory.mktemp("webhooks-db"), "pushcamp_webhooks") as url:
        yield url


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[Database]:
    database = Database(Settings(database_url=database_url))
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def server(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUSHCAMP_PUBLIC_PER_IP_LIMIT": "100000",
        **WEBHOOK_ENV,
    }
    log = tmp_path_factory.mktemp("webhooks") / "server.log"
    with ServerProcess(database_url, log, env=env) as proc:
        yield proc


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """The real ``pushcamp`` command line, with this module's webhook settings."""
    env = {**os.environ, "PUSHCAMP_DATABASE_URL": database_url, **WEBHOOK_ENV}
    return subprocess.run(
        [sys.executable, "-m", "pushcamp", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@dataclass
class Request:
    at: float  # time.monotonic() on arrival
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 in a thread of its own; ``answer(n)`` gives the status
    (and a Location) of its n-th request (0-based)."""

    answer: Callable[[int], tuple[int, str | None]]
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            status, location = self.answer(len(self.requests))
            self.requests.append(Request(time.monotonic(), dict(request.headers), body, status))
        headers = {"Location": location} if location else {}
        return web.Response(status=status, text="ok" if status < 300 else "no", headers=headers)


@pytest.fixture
def receivers() -> Iterator[Callable[[Callable[[int], tuple[int, str | None]]], Receiver]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def make(answer: Callable[[int], tuple[int, str | None]]) -> Receiver:
        receiver = Receiver(answer)

        async def start() -> str:
            app = web.Application()
            app.router.add_post("/hook", receiver._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            port = runner.addresses[0][1]
            return f"http://127.0.0.1:{port}/hook"

        receiver.url = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        return receiver

    yield make
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def wait_until(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


__all__ = ["BACKOFF", "MAX_AGE", "Receiver", "cli", "wait_until"]
