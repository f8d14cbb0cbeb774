"""Fixtures for the scaled-out mode: a real Redis (PUSHCAMP_TEST_REDIS_URL, default the
local one) under a key prefix of each test's own, removed afterwards, and several real
``pushcamp serve`` processes on one database.

Without a Redis these tests are skipped with the reason, except under CI (``CI=true``),
where they fail: CI starts one (.ci/run)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.conftest import fresh_database

REDIS_URL = os.environ.get("PUSHCAMP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class RedisUnderTest:
    url: str
    prefix: str
    client: redis.Redis

    def stored_keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=self.prefix + "*", count=1000))


def unavailable(reason: str) -> None:
    """A service these tests need is missing: a skip, or a failure under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def own_redis_broker(url: str) -> Iterator[str]:
    """A Redis database of the test's own as Celery broker: emptied before and after."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"no Redis answers at {url} ({exc})")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"no Redis answers at {REDIS_URL} ({exc}); set PUSHCAMP_TEST_REDIS_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    yield client
    client.close()


@contextmanager
def _prefixed(client: redis.Redis) -> Iterator[RedisUnderTest]:
    under_test = RedisUnderTest(REDIS_URL, f"pushcamp-test-{secrets.token_hex(6)}:", client)
    try:
        yield under_test
    finally:
        for key in under_test.stored_keys():
            client.delete(key)


@pytest.fixture
def shared_redis(redis_server: redis.Redis) -> Iterator[RedisUnderTest]:
    """The test's own corner of the Redis: a key prefix nobody else uses, emptied after."""
    with _prefixed(redis_server) as under_test:
        yield under_test


@dataclass
class Cluster:
    """Several API processes sharing one database and one Redis."""

    servers: list[ServerProcess]
    database_url: str
    db: Database
    redis: RedisUnderTest


@pytest.fixture(scope="module")
def cluster(
    redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[Cluster]:
    """Three ``pushcamp serve`` processes on a fresh database and one Redis. Delivery is
    not their business here (nothing they launch has anyone to send to)."""
    directory = tmp_path_factory.mktemp("cluster")
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(directory, "pushcamp_scaled"))
        db = Database(Settings(database_url=url))
        db.migrate()
        stack.callback(db.dispose)
        shared = stack.enter_context(_prefixed(redis_server))
        env = {
            "PUSHCAMP_REDIS_URL": shared.url,
            "PUSHCAMP_REDIS_KEY_PREFIX": shared.prefix,
            # In-process delivery stays on (the default): with it off and no broker
            # the server refuses to start, since nothing would ever send a launch.
        }
        servers = [
            stack.enter_context(ServerProcess(url, Path(directory / f"server{i}.log"), env=env))
            for i in range(3)
        ]
        yield Cluster(servers, url, db, shared)
