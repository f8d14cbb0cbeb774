"""Statistics at scale: p50/p99 of the three statistics endpoints and of
``GET /v1/single/{id}`` for a campaign with 1,000,000 delivery records and a partner with
1,000 campaigns, over real HTTP against a real ``pushcamp serve``; and what keeping the
counters costs the writes that record a launch's deliveries.

It builds the data directly in the database (bulk inserts), then:

* times recording delivery records in commits of 100 (the engine's ``record_every``)
  with the counters and without them (the plain insert the engine used before);
* times the one GROUP BY over the records that counting on read would need;
* starts the server and measures each endpoint sequentially.

It prints figures; it never passes or fails.

    .venv/bin/python bench/stats.py [--records 1000000] [--campaigns 1000]
                                    [--requests 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.services import partners, tokens  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.store import launches as launches_q  # noqa: E402
from pushcamp.store import statistics as stats_q  # noqa: E402
from pushcamp.store.models import Campaign, Delivery, Event, Launch  # noqa: E402
from pushcamp.testing.process import ServerProcess  # noqa: E402

DEVICES = ("desktop", "mobile", "tablet", None)
REASONS = ("unsubscriptions", "serviceProviderErrors", "frequencyCapped", "silentHours")
RECORD_EVERY = 100


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def delivery_row(launch_id: int, partner_id: str, i: int, at: datetime) -> dict[str, Any]:
    dropped = i % 50 == 0
    return {
        "launch_id": launch_id,
        "subscriber_id": i + 1,
        "partner_id": partner_id,
        "state": "dropped" if dropped else "sent",
        "reason": REASONS[i % len(REASONS)] if dropped else None,
        "status_code": None if dropped else 201,
        "device": DEVICES[i % len(DEVICES)],
        "created_at": at + timedelta(milliseconds=i),  # a 1M launch spans ~17 minutes
        "variant": None,
    }


def make_campaigns(db: Database, partner_id: str, n: int, now: datetime) -> list[tuple[int, int]]:
    """``n`` sent campaigns with one launch each: (campaign id, launch id)."""
    request = {"ttl": 3600, "link": "https://shop.example/sale", "title": "t"}
    made = []
    with db.write() as conn:
        for i in range(n):
            cid = conn.execute(
                insert(Campaign)
                .values(
                    partner_id=partner_id,
                    title=f"bench {i}",
                    language="all_ALL",
                    is_all=i % 3 != 0,
                    status="Sent",
                    created_at=now,
                    updated_at=now,
                )
                .returning(Campaign.id)
            ).scalar_one()
            lid = conn.execute(
                insert(Launch)
                .values(
                    partner_id=partner_id,
                    campaign_id=cid,
                    once=False,
                    status="Sent",
                    request=request,
                    topic="-",
                    batches_total=1,
                    batches_done=1,
                    created_at=now,
                    started_at=now,
                    finished_at=now + timedelta(minutes=20),
                )
                .returning(Launch.id)
            ).scalar_one()
            made.append((int(cid), int(lid)))
    return made


def record(db: Database, rows: list[dict[str, Any]], counted: bool) -> float:
    """Seconds to record ``rows`` in commits of RECORD_EVERY, with or without counters."""
    started = time.perf_counter()
    for i in range(0, len(rows), RECORD_EVERY):
        chunk = rows[i : i + RECORD_EVERY]
        with db.write() as conn:
            if counted:
                launches_q.record_deliveries(conn, chunk)
            else:
                launches_q._insert_records(conn, chunk)  # the insert without counters
    return time.perf_counter() - started


def bulk(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 20_000):
        with db.write() as conn:
            conn.execute(insert(model), rows[i : i + 20_000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cost-records", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pushcamp-bench-stats-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    db = Database(Settings(database_url=url))
    db.migrate()
    partner_id = f"b{secrets.token_hex(5)}"
    partners.create_partner(db, partner_id, "bench", 1_000_000, 1_000_000)
    token = tokens.create_token(db, partner_id)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    print(f"database: {'PostgreSQL' if url.startswith('postgres') else 'SQLite'}")

    started = time.perf_counter()
    made = make_campaigns(db, partner_id, args.campaigns, now)
    (big_campaign, big_launch), (_, cost_launch) = made[0], made[1]
    small = made[2:]
    print(f"{len(made):,} campaigns with a launch each: {time.perf_counter() - started:.1f} s")

    # The cost of the counters for the writes that record deliveries.
    n = args.cost_records
    counted = record(db, [delivery_row(big_launch, partner_id, i, now) for i in range(n)], True)
    plain = record(db, [delivery_row(cost_launch, partner_id, i, now) for i in range(n)], False)
    print(
        f"recording {n:,} deliveries in commits of {RECORD_EVERY}: "
        f"{n / plain:,.0f}/s without counters, {n / counted:,.0f}/s with them "
        f"({(counted / plain - 1) * 100:+.1f} % time)"
    )

    # The rest of the big launch, its events, and the small campaigns: bulk, then counted
    # by a rebuild of the counters from the records.
    started = time.perf_counter()
    rows = [delivery_row(big_launch, partner_id, i, now) for i in range(n, args.records)]
    bulk(db, Delivery, rows)
    events = [
        {
            "partner_id": partner_id,
            "launch_id": big_launch,
            "subscriber_id": i + 1,
            "type": kind,
            "created_at": now + timedelta(minutes=5, milliseconds=i),
        }
        for i in range(0, args.records, 3)
        for kind in (("delivered", "clicked") if i % 300 == 3 else ("delivered",))
        if i % 50 != 0
    ]
    bulk(db, Event, events)
    small_rows = [delivery_row(lid, partner_id, i, now) for _, lid in small for i in range(20)]
    bulk(db, Delivery, small_rows)
    print(
        f"{args.records:,} deliveries for campaign {big_campaign}, {len(events):,} events, "
        f"{len(small_rows):,} deliveries over {len(small):,} campaigns: "
        f"{time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    with db.write() as conn:
        stats_q.recount_all(conn)
    print(f"rebuilding every counter from the records: {time.perf_counter() - started:.1f} s")
    if url.startswith("postgres"):
        # What autovacuum would soon do after such a bulk load; without fresh statistics
        # the planner guesses at tables it thinks are empty.
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")

    # What counting on read would cost: the one GROUP BY over the big launch's records.
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with db.read() as conn:
            conn.execute(
                select(Delivery.state, Delivery.reason, Delivery.device, func.count())
                .where(Delivery.launch_id == big_launch)
                .group_by(Delivery.state, Delivery.reason, Delivery.device)
            ).all()
        times.append(time.perf_counter() - started)
    print(
        f"count on read, GROUP BY over {args.records:,} records: "
        f"median {statistics.median(times) * 1000:.0f} ms (events not included)"
    )
    db.dispose()

    # The records and events span about 20 minutes from ``now``: past midnight, the range
    # must hold the next day too.
    first, last = now.date().isoformat(), (now + timedelta(minutes=30)).date().isoformat()
    body = {"partner_id": partner_id, "start_date": first, "end_date": last}
    calls = {
        "campaign-metrics (1M records)": (
            "POST",
            "/v1/statistics/campaign-metrics",
            body | {"campaign_id": big_campaign},
        ),
        f"overall-metrics ({args.campaigns:,} campaigns, 100 per page)": (
            "POST",
            "/v1/statistics/overall-metrics",
            body | {"page": 1, "per_page": 100},
        ),
        f"top-metrics ({args.campaigns:,} campaigns)": (
            "POST",
            "/v1/statistics/top-metrics",
            body,
        ),
        "GET /v1/single/{id} (1M records)": ("GET", f"/v1/single/{big_campaign}", None),
    }
    with (
        ServerProcess(url, workdir / "server.log") as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        print(f"\n{'endpoint':<50} {'p50 ms':>8} {'p99 ms':>8}")
        for name, (method, path, payload) in calls.items():
            latencies = []
            for i in range(args.requests + 5):
                started = time.perf_counter()
                answer = client.request(method, path, json=payload)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    raise SystemExit(f"{name}: {answer.status_code} {answer.text}")
                if i >= 5:  # the first requests warm caches up
                    latencies.append(elapsed)
            print(f"{name:<50} {pct(latencies, 50):8.1f} {pct(latencies, 99):8.1f}")
        overview = client.post(
            "/v1/statistics/campaign-metrics", json=body | {"campaign_id": big_campaign}
        ).json()["overview"]
        print(f"\nthe big campaign's overview: {overview['total']}")


if __name__ == "__main__":
    main()
