"""How the scaled-out mode scales with worker processes.

For each count of ``pushcamp worker`` processes (1, 2 and 4 by default) this makes a
fresh PostgreSQL database, stores ``--audience`` subscribers of one partner (made at the
push-service simulator, a separate process with decryption off), starts one
``pushcamp serve`` with in-process delivery off and that many workers on a Redis broker
(a queue of the run's own), launches one campaign and waits until the simulator has
accepted every push. It prints, per row:

* pushes/s, from the launch request to the last push accepted;
* each worker's CPU (user + system) per push it sent, and the workers' total CPU over
  wall time (how many cores sending took);
* the database's share: CPU of the PostgreSQL backends serving this database (found in
  ``pg_stat_activity``) over the CPU of the workers, the API process and those backends;
* the API process's CPU (the outbox publishing the batches) and the simulator's.

Each run checks that every subscriber has exactly one delivery record.

    .venv/bin/python bench/scale.py [--workers 1,2,4] [--audience 100000]
        [--concurrency 4] [--database-url postgresql://postgres@127.0.0.1:5432/test]
        [--broker-url redis://127.0.0.1:6379/14]

The database URL is an administrative connection: each run creates and drops a database
of its own next to it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds  # noqa: E402
from pushcamp.domain.subscribers import NewSubscription  # noqa: E402
from pushcamp.services import partners, tokens  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.store import subscribers as subs_q  # noqa: E402
from pushcamp.store.models import Delivery, LaunchBatch  # noqa: E402
from pushcamp.testing.process import ServerProcess, WorkerProcess  # noqa: E402
from pushcamp.testing.simulator import SimulatorProcess  # noqa: E402

PARTNER = "100000001"


def backends(admin: str, name: str) -> list[int]:
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def run(args: argparse.Namespace, workers: int, sim: SimulatorProcess, work: Path) -> dict:
    admin_url = make_url(args.database_url).set(drivername="postgresql")
    admin = admin_url.render_as_string(hide_password=False)
    name = f"pushcamp_scale_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    db = Database(Settings(database_url=url))
    procs: list[ServerProcess | WorkerProcess] = []
    try:
        db.migrate()
        partners.create_partner(db, PARTNER, "scale", 10_000, 10_000)
        token = tokens.create_token(db, PARTNER)
        key = partners.vapid_public_key(db, PARTNER)
        sim.client.reset()
        made = 0
        now = datetime.now(UTC)
        while made < args.audience:
            part = sim.client.subscribe_many(min(20_000, args.audience - made), key)
            rows = [
                NewSubscription(
                    endpoint=s["endpoint"], p256dh=s["keys"]["p256dh"], auth=s["keys"]["auth"]
                )
                for s in part
            ]
            with db.write() as conn:
                subs_q.upsert_subscriptions(conn, PARTNER, rows, now, engaged_at=now)
            made += len(part)
        env = {
            "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "PUSHCAMP_BROKER_URL": args.broker_url,
            "PUSHCAMP_BROKER_QUEUE": f"pushcamp-bench-{secrets.token_hex(4)}",
        }
        worker_procs = []
        for i in range(workers):
            w = WorkerProcess(url, work / f"{name}-worker{i}.log", env, args.concurrency).start()
            procs.append(w)
            worker_procs.append(w)
        server = ServerProcess(
            url, work / f"{name}-server.log", env={**env, "PUSHCAMP_DELIVERY_IN_PROCESS": "false"}
        ).start()
        procs.append(server)
        sim_pid = sim.proc.pid if sim.proc else 0
        with httpx.Client(base_url=server.url, headers={"Authorization": token}, timeout=60) as api:
            created = api.post(
                "/v1/single",
                json={
                    "partner_id": PARTNER,
                    "title": "scale",
                    "language": "all_ALL",
                    "is_all": True,
                },
            )
            campaign_id = int(created.json()["campaign_id"])
            db_before = {pid: cpu_seconds(pid) for pid in backends(admin, name)}
            before = {p.pid: cpu_seconds(p.pid) for p in procs}
            sim_before = cpu_seconds(sim_pid)
            start = time.monotonic()
            launched = api.post(
                f"/v1/single/{campaign_id}",
                json={
                    "partner_id": PARTNER,
                    "title": "Scale",
                    "description": "bench",
                    "link": "https://shop.pushcamp.dev/",
                    "ttl": 3600,
                },
            )
            assert launched.status_code == 200, launched.text
            deadline = start + args.timeout
            while sim.client.stats()["accepted"] < args.audience:
                if time.monotonic() > deadline:
                    raise SystemExit(f"not every push arrived in {args.timeout}s")
                time.sleep(0.1)
            seconds = time.monotonic() - start
            after = {p.pid: cpu_seconds(p.pid) for p in procs}
            db_cpu = sum(
                cpu_seconds(pid) - db_before.get(pid, 0.0) for pid in backends(admin, name)
            )
            sim_cpu = cpu_seconds(sim_pid) - sim_before
            while True:  # the last records are written just after the last push
                [launch] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
                if launch["status"] != "Sending" and launch["status"] != "Queued":
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the launch did not end: {launch}")
                time.sleep(0.1)
        with db.read() as conn:
            [launch_id] = conn.execute(select(LaunchBatch.launch_id).limit(1)).scalars()
            records, distinct = conn.execute(
                select(func.count(), func.count(func.distinct(Delivery.subscriber_id))).where(
                    Delivery.launch_id == launch_id
                )
            ).one()
            finished = Counter(
                ":".join(str(c).split(":")[:2])
                for c in conn.execute(select(LaunchBatch.claimed_by)).scalars()
            )
        if not records == distinct == args.audience:
            raise SystemExit(f"records {records}, distinct {distinct}, audience {args.audience}")
        host = socket.gethostname()
        per_worker = []
        for w in worker_procs:
            share = finished.get(f"{host}:{w.pid}", 0) / max(1, sum(finished.values()))
            cpu = after[w.pid] - before[w.pid]
            per_worker.append((cpu, share))
        workers_cpu = sum(c for c, _ in per_worker)
        api_cpu = after[server.pid] - before[server.pid]
        return {
            "workers": workers,
            "seconds": seconds,
            "rate": args.audience / seconds,
            "us_per_push": [1e6 * c / max(1.0, s * args.audience) for c, s in per_worker],
            "shares": [s for _, s in per_worker],
            "cores": workers_cpu / seconds,
            "db_cpu": db_cpu,
            "db_share": db_cpu / max(1e-9, workers_cpu + api_cpu + db_cpu),
            "api_cpu": api_cpu,
            "sim_cpu": sim_cpu,
            "load": os.getloadavg()[0],
        }
    finally:
        for p in reversed(procs):
            p.stop()
        db.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--audience", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    print(
        f"{args.audience:,} subscribers, PostgreSQL, Redis broker, {os.cpu_count()} cores, "
        f"--concurrency {args.concurrency}; simulator in its own process, decryption off",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(decrypt=False) as sim:
        for n in counts:
            row = run(args, n, sim, Path(tmp))
            rows.append(row)
            print(f"  {n} worker(s) done in {row['seconds']:.1f} s", flush=True)
    print()
    print(
        "| workers | pushes/s | worker CPU µs/push (each) | share of batches (each)"
        " | cores sending | DB share | API CPU s | simulator CPU s | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['rate']:,.0f} | "
            + " / ".join(f"{u:,.0f}" for u in r["us_per_push"])
            + " | "
            + " / ".join(f"{s:.0%}" for s in r["shares"])
            + f" | {r['cores']:.2f} | {r['db_share']:.0%} | {r['api_cpu']:.1f}"
            + f" | {r['sim_cpu']:.1f} | {r['load']:.1f} |"
        )


if __name__ == "__main__":
    main()
