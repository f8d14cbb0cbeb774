"""The engine's record writes (store/launches.py: record_deliveries, mark_accepted) are
plain SQL per backend, not Core statements: each record is stored exactly as Core stores
it (other queries read it back, on SQLite as text), written once, and counted only when
this write inserted it — on both backends."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, insert, select, update

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.store import Database, statistics
from pushcamp.store import launches as q
from pushcamp.store import subscribers as subs_q
from pushcamp.store.models import Delivery, LaunchStat, LaunchVariantStat, Subscriber
from tests.conftest import Tenant, recorded_launch

# Microseconds 0 and a zone-less write must not change how the time is stored.
MOMENT = datetime(2026, 3, 4, 5, 6, 7, 0, tzinfo=UTC)


def record(
    launch_id: int, partner_id: str, subscriber_id: int, n: int, **fields: Any
) -> dict[str, Any]:
    return {
        "launch_id": launch_id,
        "subscriber_id": subscriber_id,
        "partner_id": partner_id,
        "state": "sent" if n % 3 else "dropped",
        "reason": None if n % 3 else "expired",
        "status_code": 201 if n % 3 else None,
        "device": (None, "mobile", "desktop")[n % 3],
        "created_at": MOMENT + timedelta(seconds=17 * n, microseconds=n),
        "variant": (None, 0, 1)[n % 3],
        **fields,
    }


def stored(db: Database, launch_id: int) -> list[tuple[Any, ...]]:
    """The launch's records as the database holds them (times as their stored text)."""
    d = Delivery
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    d.subscriber_id,
                    d.partner_id,
                    d.state,
                    d.reason,
                    d.status_code,
                    d.device,
                    cast(d.created_at, String),
                    d.variant,
                )
                .where(d.launch_id == launch_id)
                .order_by(d.subscriber_id)
            )
        ]


def counters(db: Database, launch_id: int) -> tuple[list[tuple[Any, ...]], ...]:
    with db.read() as conn:
        stats = conn.execute(
            select(
                LaunchStat.bucket, LaunchStat.metric, LaunchStat.device, func.sum(LaunchStat.count)
            )
            .where(LaunchStat.launch_id == launch_id)
            .group_by(LaunchStat.bucket, LaunchStat.metric, LaunchStat.device)
            .order_by(LaunchStat.bucket, LaunchStat.metric, LaunchStat.device)
        ).all()
        arms = conn.execute(
            select(
                LaunchVariantStat.variant,
                LaunchVariantStat.bucket,
                LaunchVariantStat.metric,
                func.sum(LaunchVariantStat.count),
            )
            .where(LaunchVariantStat.launch_id == launch_id)
            .group_by(LaunchVariantStat.variant, LaunchVariantStat.bucket, LaunchVariantStat.metric)
            .order_by(LaunchVariantStat.variant, LaunchVariantStat.bucket, LaunchVariantStat.metric)
        ).all()
    return [tuple(r) for r in stats], [tuple(r) for r in arms]


def test_records_are_stored_as_core_stores_them(db: Database, tenant: Tenant) -> None:
    by_core, by_engine = (
        recorded_launch(db, tenant.partner_id),
        recorded_launch(db, tenant.partner_id),
    )
    rows = [record(by_core, tenant.partner_id, 1000 + n, n) for n in range(250)]
    with db.write() as conn:
        conn.execute(insert(Delivery), rows)
        q.record_deliveries(conn, [{**r, "launch_id": by_engine} for r in rows])

    assert stored(db, by_engine) == stored(db, by_core)
    assert len(stored(db, by_engine)) == 250


def test_a_record_is_written_and_counted_once(db: Database, tenant: Tenant) -> None:
    launch_id = recorded_launch(db, tenant.partner_id)
    first = [record(launch_id, tenant.partner_id, 2000 + n, n) for n in range(0, 300, 2)]
    with db.write() as conn:
        q.record_deliveries(conn, first)
    # A batch taken again: half of its records exist, one key comes twice (the first is
    # the one kept), and 130 are new; more than one SQLite statement's worth of rows.
    again = [record(launch_id, tenant.partner_id, 2000 + n, n + 1) for n in range(300)]
    again.insert(7, record(launch_id, tenant.partner_id, 2001, 5, device="tablet"))
    with db.write() as conn:
        q.record_deliveries(conn, again)

    records = stored(db, launch_id)
    assert len(records) == 300
    assert again[1]["subscriber_id"] == 2001
    assert next(r for r in records if r[0] == 2001)[5] == again[1]["device"] != "tablet"
    counted = counters(db, launch_id)
    with db.write() as conn:
        statistics.recount_launch(conn, launch_id)
    assert counters(db, launch_id) == counted  # the counters say what the records say
    assert sum(n for *_, n in counted[0]) == 300


def test_first_acceptance_is_noted_once_as_core_notes_it(db: Database, tenant: Tenant) -> None:
    subs = [
        NewSubscription(
            endpoint=f"https://push.example.com/{secrets.token_hex(8)}",
            p256dh="B" * 87,
            auth="A" * 22,
        )
        for _ in range(6)
    ]
    with db.write() as conn:
        subs_q.upsert_subscriptions(conn, tenant.partner_id, subs, MOMENT)
    with db.read() as conn:
        ids = list(
            conn.scalars(
                select(Subscriber.id)
                .where(Subscriber.partner_id == tenant.partner_id)
                .order_by(Subscriber.id)
            )
        )
    later = MOMENT + timedelta(hours=1, microseconds=5)
    with db.write() as conn:
        q.mark_accepted(conn, ids[:2], MOMENT)
        q.mark_accepted(conn, ids[1:4], later)  # ids[1] keeps its first time
        conn.execute(
            update(Subscriber).where(Subscriber.id == ids[4]).values(first_accepted_at=MOMENT)
        )
    with db.read() as conn:
        seen = dict(
            conn.execute(
                select(Subscriber.id, cast(Subscriber.first_accepted_at, String)).where(
                    Subscriber.id.in_(ids)
                )
            ).all()
        )
    assert seen[ids[0]] == seen[ids[1]] == seen[ids[4]] is not None  # as Core writes it
    assert seen[ids[2]] == seen[ids[3]] not in (None, seen[ids[0]])
    assert seen[ids[5]] is None
