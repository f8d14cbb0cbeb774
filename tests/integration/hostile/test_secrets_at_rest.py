"""The SQLite database (which holds every partner's VAPID private key and event-signing
key) and its WAL and SHM files are created readable and writable by their owner only,
whatever the umask. Runs on both legs: it uses a SQLite file of its own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_wal_and_shm_are_owner_only_while_the_server_writes(tmp_path: Path) -> None:
    path = tmp_path / "secrets.db"
    url = f"sqlite:///{path}"
    old_umask = os.umask(0o022)  # the usual umask: files readable by everyone
    try:
        db = Database(Settings(database_url=url))
        db.migrate()
        partners.create_partner(db, "100000001", "shop", None, None)
        token = tokens.create_token(db, "100000001")
        with ServerProcess(url, tmp_path / "server.log") as server:
            r = httpx.post(
                server.url + "/v1/single",
                headers={"Authorization": f"Bearer {token}"},
                json={"partner_id": "100000001", "title": "t", "language": "en_US"},
                timeout=10,
            )
            assert r.status_code == 201
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        db.dispose()
    finally:
        os.umask(old_umask)


def test_an_existing_database_keeps_the_permissions_its_operator_chose(tmp_path: Path) -> None:
    path = tmp_path / "chosen.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    db = Database(Settings(database_url=f"sqlite:///{path}"))
    db.migrate()
    db.dispose()
    assert mode(path) == 0o640
