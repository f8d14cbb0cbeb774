"""A running server remembers a good token for a short time and never a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushcamp.errors import Unauthorized
from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqlite_db(tmp_path: Path):
    db = Database(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    db.migrate()
    yield db
    db.dispose()


def test_good_token_is_cached_until_ttl_then_rechecked(sqlite_db: Database) -> None:
    partners.create_partner(sqlite_db, "p1")
    token = tokens.create_token(sqlite_db, "p1")
    clock = Clock()
    auth = tokens.Authenticator(sqlite_db, ttl=2.0, clock=clock)
    assert auth.cached(token) is None
    assert auth.authenticate(f"Bearer {token}").partner_id == "p1"
    cached = auth.cached(token)
    assert cached is not None and cached.partner_id == "p1"
    tokens.revoke_token(sqlite_db, token.split("_")[1])
    clock.now = 1.9
    assert auth.cached(token) is not None  # within the TTL, still trusted
    clock.now = 2.1
    assert auth.cached(token) is None
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_bad_tokens_are_never_cached(sqlite_db: Database) -> None:
    auth = tokens.Authenticator(sqlite_db, ttl=60)
    bad = "pc_00000000_" + "a" * 43
    for _ in range(2):
        with pytest.raises(Unauthorized):
            auth.authenticate(bad)
        assert auth.cached(bad) is None


def test_zero_ttl_disables_the_cache(sqlite_db: Database) -> None:
    partners.create_partner(sqlite_db, "p2")
    token = tokens.create_token(sqlite_db, "p2")
    auth = tokens.Authenticator(sqlite_db, ttl=0)
    auth.authenticate(token)
    assert auth.cached(token) is None
