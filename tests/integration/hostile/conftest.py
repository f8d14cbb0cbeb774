"""Servers of their own for the hostile-client tests, with short limits so that the
deadlines can be watched passing in a second or two. One of each for this folder
(package scope): stopped after its last test, instead of polling the database, idle, for
the rest of the session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
KEEP_ALIVE = 1
GUARDED_MAX_CONNECTIONS = 400
CAPPED_MAX_CONNECTIONS = 20
PUBLIC_URL = "https://push.example.com"

COMMON = {
    "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "PUSHCAMP_PUBLIC_PER_IP_LIMIT": "100000",
}


class LoggedServer:
    """A server process and a way to read what it logged since a point in time."""

    def __init__(self, proc: ServerProcess, log_path: Path) -> None:
        self.proc = proc
        self.url = proc.url
        self.pid = proc.pid
        self.log_path = log_path

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def errors_since(self, offset: int) -> list[str]:
        """Log lines at error level or above (a traceback always is) since ``offset``."""
        with open(self.log_path, encoding="utf-8") as log:
            log.seek(offset)
            lines = log.read().splitlines()
        found = []
        for line in lines:
            try:
                level = json.loads(line).get("level")
            except ValueError:
                level = "error" if "Traceback" in line else None
            if level in ("error", "critical", "exception"):
                found.append(line)
        return found


@pytest.fixture(scope="package")
def guarded(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedServer]:
    """Header and body deadlines of 1.5 s, keep-alive 1 s, 400 connections at most."""
    log = tmp_path_factory.mktemp("guarded") / "server.log"
    env = {
        **COMMON,
        "PUSHCAMP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "PUSHCAMP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "PUSHCAMP_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
        "PUSHCAMP_MAX_CONNECTIONS": str(GUARDED_MAX_CONNECTIONS),
    }
    with ServerProcess(database_url, log, env=env) as proc:
        yield LoggedServer(proc, log)


@pytest.fixture(scope="package")
def capped(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedServer]:
    """At most 20 connections; deadlines long enough to hold 20 idle ones meanwhile."""
    log = tmp_path_factory.mktemp("capped") / "server.log"
    env = {
        **COMMON,
        "PUSHCAMP_HEADER_TIMEOUT_SECONDS": "60",
        "PUSHCAMP_MAX_CONNECTIONS": str(CAPPED_MAX_CONNECTIONS),
    }
    with ServerProcess(database_url, log, env=env) as proc:
        yield LoggedServer(proc, log)


@pytest.fixture(scope="package")
def with_public_url(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedServer]:
    log = tmp_path_factory.mktemp("public-url") / "server.log"
    env = {**COMMON, "PUSHCAMP_PUBLIC_URL": PUBLIC_URL}
    with ServerProcess(database_url, log, env=env) as proc:
        yield LoggedServer(proc, log)


@pytest.fixture(scope="package")
def with_allowed_hosts(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedServer]:
    log = tmp_path_factory.mktemp("allowed-hosts") / "server.log"
    env = {**COMMON, "PUSHCAMP_ALLOWED_HOSTS": "push.internal, Pushcamp.Example.Org"}
    with ServerProcess(database_url, log, env=env) as proc:
        yield LoggedServer(proc, log)
