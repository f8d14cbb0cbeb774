"""Migration 0007: endpoints stored before the canonical-endpoint rule are rewritten to the
canonical spelling, and one browser's rows (several spellings, one partner) merged.

Invariants: after the upgrade every active row is spelled canonically and there is one
active row per (partner, canonical endpoint); the kept row is the most recently updated
active one and keeps its id (what delivery records and events point at); the others are
inactive, "merged" (or keep the reason they already had), never deleted; other partners'
rows are never merged with them; a browser subscribing again in the canonical spelling
updates the kept row (200), never makes a new one (201). The migration's own frozen
copy of the rule agrees with the application's.

The database is a fresh one at revision 0006, filled by SQL, then brought to head by
``Database.migrate()``; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.domain.subscribers import canonical_endpoint
from pushcamp.encoding import b64url_encode
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.conftest import fresh_database

MIGRATIONS = resources.files("pushcamp.store") / "migrations"
FCM = "https://fcm.googleapis.com/fcm/send/"
T0 = datetime(2025, 1, 1, tzinfo=UTC)

subscribers = sa.table(
    "subscribers",
    *(sa.column(name) for name in ("id", "partner_id", "endpoint", "p256dh", "auth")),
    sa.column("attributes", sa.JSON()),
    sa.column("active", sa.Boolean()),
    *(
        sa.column(name, sa.DateTime(timezone=True))
        for name in ("created_at", "updated_at", "deactivated_at")
    ),
    sa.column("deactivated_reason"),
)
events = sa.table(
    "events",
    *(sa.column(name) for name in ("partner_id", "launch_id", "subscriber_id", "type")),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def migration_0007() -> ModuleType:
    path = MIGRATIONS / "versions" / "0007_canonical_endpoints.py"
    spec = importlib.util.spec_from_file_location("migration_0007", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url_encode(point), "auth": b64url_encode(secrets.token_bytes(16))}


def upgrade_to(db: Database, revision: str) -> None:
    """Alembic's upgrade to ``revision`` on ``db``'s connection, as ``migrate()`` does."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()


@pytest.fixture
def old_database(tmp_path: Path) -> Iterator[Database]:
    with fresh_database(tmp_path, "pushcamp_0007") as url:
        db = Database(Settings(database_url=url))
        try:
            upgrade_to(db, "0006")
            yield db
        finally:
            db.dispose()


def insert_partner(conn: sa.Connection, partner_id: str) -> None:
    # Only the columns revision 0006 has (the others have defaults): not the models,
    # which describe the newest schema.
    conn.execute(
        sa.text(
            "INSERT INTO partners (id, name, v1_limit, v2_limit, created_at, signing_key) "
            "VALUES (:id, 'old', 30, 6000, :now, :key)"
        ),
        {"id": partner_id, "now": T0, "key": secrets.token_bytes(32)},
    )
    private = ec.generate_private_key(ec.SECP256R1())
    conn.execute(
        sa.text(
            "INSERT INTO vapid_keys (partner_id, public_key, private_key, created_at) "
            "VALUES (:id, :public, :private, :now)"
        ),
        {
            "id": partner_id,
            "public": b64url_encode(
                private.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
            ),
            "private": b64url_encode(private.private_numbers().private_value.to_bytes(32, "big")),
            "now": T0,
        },
    )


def insert_row(
    conn: sa.Connection,
    partner_id: str,
    endpoint: str,
    *,
    updated_hours: int,
    reason: str | None = None,
) -> int:
    """A subscriber as an old pushcamp stored it: inactive when ``reason`` is given."""
    stamp = T0 + timedelta(hours=updated_hours)
    values: dict[str, Any] = {
        "partner_id": partner_id,
        "endpoint": endpoint,
        **new_keys(),
        "attributes": {},
        "active": reason is None,
        "created_at": T0,
        "updated_at": stamp,
        "deactivated_at": stamp if reason else None,
        "deactivated_reason": reason,
    }
    conn.execute(subscribers.insert().values(**values))
    found = conn.execute(
        sa.select(subscribers.c.id).where(
            subscribers.c.partner_id == partner_id, subscribers.c.endpoint == endpoint
        )
    ).scalar_one()
    return int(found)


def all_rows(db: Database) -> dict[int, Any]:
    with db.engine.connect() as conn:
        return {row.id: row for row in conn.execute(sa.select(subscribers))}


def test_old_spellings_made_canonical_and_duplicates_merged(
    old_database: Database, tmp_path: Path
) -> None:
    db = old_database
    shop, other = f"p{secrets.token_hex(4)}", f"p{secrets.token_hex(4)}"
    with db.engine.begin() as conn:
        insert_partner(conn, shop)
        insert_partner(conn, other)
        # (name, partner, endpoint as stored, hours after T0 it was updated, why inactive)
        old_rows = [
            # Alone, spelled the old way: only rewritten.
            ("alone", shop, "HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/A", 1, None),
            # One browser, three spellings: the most recently updated *active* one is
            # kept (not the newer inactive one, nor the one already canonical).
            ("b_canonical", shop, f"{FCM}B", 1, None),
            ("b_newer", shop, "https://FCM.googleapis.com/fcm/send/B", 3, None),
            ("b_gone", shop, "https://fcm.googleapis.com:443/fcm/send/B", 4, "gone"),
            # All inactive: the most recently updated is kept; reasons stay as they were.
            ("c_unsubscribed", shop, "https://fcm.googleapis.com./fcm/send/C", 2, "unsubscribed"),
            ("c_gone", shop, f"{FCM}C", 1, "gone"),
            # The canonical row is the newest active one: it stays as it is.
            ("g_canonical", shop, f"{FCM}G", 5, None),
            ("g_old", shop, "https://Fcm.GoogleApis.Com/fcm/send/G", 2, None),
            # The path is case-sensitive: two browsers, untouched.
            ("d_lower", shop, f"{FCM}d", 1, None),
            ("d_upper", shop, f"{FCM}D", 1, None),
            # Another partner's row for the same browser is its own.
            ("other_b", other, "HTTPS://FCM.GOOGLEAPIS.COM/fcm/send/B", 1, None),
        ]
        row = {  # name -> id
            name: insert_row(conn, partner, url, updated_hours=hours, reason=why)
            for name, partner, url, hours, why in old_rows
        }
        # What delivery records and events point at: subscriber ids.
        for name in ("b_canonical", "b_newer", "g_old"):
            click = {"launch_id": 1, "subscriber_id": row[name], "type": "clicked"}
            conn.execute(events.insert().values(partner_id=shop, created_at=T0, **click))
    before = all_rows(db)

    db.migrate()

    after = all_rows(db)
    assert set(after) == set(before)  # nothing deleted, nothing added
    endpoint = {name: after[row_id].endpoint for name, row_id in row.items()}
    active = {name for name, row_id in row.items() if after[row_id].active}
    reason = {name: after[row_id].deactivated_reason for name, row_id in row.items()}
    assert endpoint["alone"] == f"{FCM}A" and "alone" in active
    assert endpoint["b_newer"] == f"{FCM}B"
    # The row that held the canonical spelling takes the kept row's old one.
    assert endpoint["b_canonical"] == "https://FCM.googleapis.com/fcm/send/B"
    assert endpoint["b_gone"] == "https://fcm.googleapis.com:443/fcm/send/B"
    assert endpoint["c_unsubscribed"] == f"{FCM}C"
    assert endpoint["c_gone"] == "https://fcm.googleapis.com./fcm/send/C"
    assert endpoint["g_canonical"] == f"{FCM}G"
    assert endpoint["g_old"] == "https://Fcm.GoogleApis.Com/fcm/send/G"
    assert (endpoint["d_lower"], endpoint["d_upper"]) == (f"{FCM}d", f"{FCM}D")
    assert endpoint["other_b"] == f"{FCM}B"
    assert active == {"alone", "b_newer", "g_canonical", "d_lower", "d_upper", "other_b"}
    assert reason == {
        "alone": None, "b_canonical": "merged", "b_newer": None, "b_gone": "gone",
        "c_unsubscribed": "unsubscribed", "c_gone": "gone", "g_canonical": None,
        "g_old": "merged", "d_lower": None, "d_upper": None, "other_b": None,
    }  # fmt: skip
    for name in ("b_canonical", "g_old"):
        assert after[row[name]].deactivated_at is not None
    # Every row keeps its other columns (keys, creation time); kept rows their update time.
    for row_id, old in before.items():
        new = after[row_id]
        assert (new.p256dh, new.auth, new.partner_id) == (old.p256dh, old.auth, old.partner_id)
    assert after[row["b_newer"]].updated_at == before[row["b_newer"]].updated_at
    # One active row per browser, and every active row spelled canonically.
    seen = [(r.partner_id, canonical_endpoint(r.endpoint)) for r in after.values() if r.active]
    assert len(seen) == len(set(seen))
    assert all(r.endpoint == canonical_endpoint(r.endpoint) for r in after.values() if r.active)
    with db.engine.connect() as conn:
        pointed = sorted(conn.execute(sa.select(events.c.subscriber_id)).scalars())
    assert pointed == sorted([row["b_canonical"], row["b_newer"], row["g_old"]])

    # A browser subscribing again, in the canonical spelling or an old one, updates the
    # kept row; a new endpoint is still a new row.
    log = tmp_path / "server.log"
    with (
        ServerProcess(db.settings.database_url, log) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):

        def subscribe(url: str) -> int:
            body = {"partner_id": shop, "endpoint": url, "keys": new_keys()}
            response = client.post("/v1/subscriptions", json=body)
            assert response.status_code in (200, 201), response.text
            return response.status_code

        assert subscribe(f"{FCM}B") == 200
        assert subscribe(f"{FCM}A") == 200
        assert subscribe("HTTPS://FCM.googleapis.com/fcm/send/G") == 200
        assert subscribe(f"{FCM}C") == 200  # reactivated, under the kept id
        assert subscribe(f"{FCM}new") == 201
    final = all_rows(db)
    assert len(final) == len(after) + 1
    assert final[row["c_unsubscribed"]].active and not final[row["c_gone"]].active
    assert final[row["b_newer"]].p256dh != after[row["b_newer"]].p256dh  # the one updated
    assert final[row["b_canonical"]].p256dh == after[row["b_canonical"]].p256dh


def test_a_database_without_old_spellings_is_left_alone(old_database: Database) -> None:
    db = old_database
    partner = f"p{secrets.token_hex(4)}"
    with db.engine.begin() as conn:
        insert_partner(conn, partner)
        for n in range(3):
            insert_row(conn, partner, f"{FCM}{n}", updated_hours=n)
    before = all_rows(db)
    db.migrate()
    assert all_rows(db) == before


@pytest.mark.parametrize(
    "url",
    [
        "HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/x",
        "https://fcm.googleapis.com:443/fcm/send/x",
        "https://fcm.googleapis.com./fcm/send/AbC?Q=R",
        "Https://wns2-par02p.Notify.Windows.com/w/?token=AbC",
        "http://LocalHost.:9090/push/Ab",
        "http://127.0.0.1:80/push/Ab",
        "https://[::1]:443/x",
        "https://[::1]:8443/x",
        "https://[::1",
        "https://fcm.googleapis.com:99999/x",
        "not a url",
        "",
        "https:///x",
        "https://user@FCM.googleapis.com/x",
        "HTTPS://web.push.apple.com:443/QGx",
    ],
)
def test_the_migrations_frozen_rule_agrees_with_the_application(url: str) -> None:
    assert migration_0007().canonical(url) == canonical_endpoint(url)
