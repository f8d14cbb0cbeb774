"""CPU the delivery engine's database calls cost its process, per push.

Sends nothing: a launch to ``--records`` stored subscribers is played through the calls
the engine makes for it (pushcamp/delivery/engine.py), in the same order and sizes, each
timed with ``time.process_time``: per page of 500, the launch's status (``get_launch``)
and the page (``audience_page``); per group of ``--group`` answers, in one write
transaction, ``record_deliveries`` (with the statistics counters), ``mark_accepted`` and
the pause counters (``add_to_tally``). A first short launch warms the statement caches;
then ``--rounds`` launches, and each call's best round is printed in µs per push. What
the database server spends (PostgreSQL) is not counted: only what the engine's process
would. One subscriber in ten has attributes, one answer in seven is a drop.

    .venv/bin/python bench/engine_db.py [--records 10000] [--group 500] [--rounds 3]
                                        [--database-url URL]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.domain.subscribers import NewSubscription  # noqa: E402
from pushcamp.services import partners  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.store import campaigns as campaigns_q  # noqa: E402
from pushcamp.store import launches as q  # noqa: E402
from pushcamp.store import pause as pause_q  # noqa: E402
from pushcamp.store import subscribers as subs_q  # noqa: E402
from pushcamp.store.models import Subscriber  # noqa: E402

PAGE = 500


def setup(db: Database, records: int) -> tuple[str, int, int]:
    partner_id = f"b{secrets.token_hex(5)}"
    partners.create_partner(db, partner_id, "bench")
    now = datetime.now(UTC)
    subs = [
        NewSubscription(
            endpoint=f"https://push.example.com/{partner_id}/{i}",
            p256dh="B" + "A" * 86,
            auth="A" * 22,
            device=("desktop", "mobile", None)[i % 3],
            attributes={"plan": "gold"} if i % 10 == 0 else None,
        )
        for i in range(records)
    ]
    with db.write() as conn:
        subs_q.upsert_subscriptions(conn, partner_id, subs, now, engaged_at=now)
    with db.read() as conn:
        lo, hi = conn.execute(
            select(func.min(Subscriber.id), func.max(Subscriber.id)).where(
                Subscriber.partner_id == partner_id
            )
        ).one()
    return partner_id, int(lo), int(hi)


def launch(
    db: Database, partner_id: str, lo: int, hi: int, group: int, pages: int | None = None
) -> dict[str, float]:
    """One launch through the engine's calls: CPU seconds per call."""
    cpu: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        result = fn(*args, **kwargs)
        cpu[name] += time.process_time() - started
        return result

    now = datetime.now(UTC)
    row = campaigns_q.NewCampaignRow(partner_id, secrets.token_hex(6), "all_ALL", False, "Sent")
    with db.write() as conn:
        [campaign_id] = campaigns_q.insert_campaigns(conn, [row])
        assert campaign_id is not None
        launch_id = q.insert_launch(
            conn,
            partner_id=partner_id,
            campaign_id=campaign_id,
            once=False,
            status="Running",
            request={"title": "Sale", "body": "Today only", "ttl": 3600},
            now=now,
        )
    after, done = 0, 0
    while pages is None or done < pages:
        with db.read() as conn:
            assert timed("get_launch", q.get_launch, conn, launch_id) is not None
            page = timed(
                "audience_page",
                q.audience_page,
                conn,
                partner_id=partner_id,
                launch_id=launch_id,
                lo=lo,
                hi=hi,
                after=after,
                limit=PAGE,
                language=None,
                target=None,
                engaged_since=None,
            )
        if not page:
            break
        done += 1
        after = page[-1].id
        for start in range(0, len(page), group):
            answered = page[start : start + group]
            rows = [
                {
                    "launch_id": launch_id,
                    "subscriber_id": r.id,
                    "partner_id": partner_id,
                    "state": "dropped" if r.id % 7 == 0 else "sent",
                    "reason": "gone" if r.id % 7 == 0 else None,
                    "status_code": 410 if r.id % 7 == 0 else 201,
                    "device": r.device,
                    "created_at": datetime.now(UTC),
                    "variant": None,
                }
                for r in answered
            ]
            accepted = [r.id for r in answered if r.id % 7]
            refusals = Counter({"403:x": 1}) if answered[0].id % 2 else Counter[str]()
            with db.write() as conn:
                timed("record_deliveries", q.record_deliveries, conn, rows)
                timed("mark_accepted", q.mark_accepted, conn, accepted, datetime.now(UTC))
                timed(
                    "add_to_tally", pause_q.add_to_tally, conn, launch_id, len(answered), refusals
                )
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--group", type=int, default=500, help="answers per write")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    url = args.database_url
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='pushcamp-bench-db-')) / 'bench.db'}"
    db = Database(Settings(database_url=url))
    db.migrate()
    partner_id, lo, hi = setup(db, args.records)
    launch(db, partner_id, lo, hi, args.group, pages=3)  # statements compiled, caches warm
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, seconds in launch(db, partner_id, lo, hi, args.group).items():
            best[name] = min(best.get(name, seconds), seconds)
    print(
        f"database: {'PostgreSQL' if url.startswith('postgres') else 'SQLite'}; "
        f"{args.records:,} records, groups of {args.group}, best of {args.rounds} rounds"
    )
    for name, seconds in [*best.items(), ("total", sum(best.values()))]:
        print(f"  {name:<18} {seconds / args.records * 1e6:7.2f} µs CPU per push")
    db.dispose()


if __name__ == "__main__":
    main()
