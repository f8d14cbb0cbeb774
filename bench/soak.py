"""Load with faults: partners at their rate limits, public subscribe traffic and one large
launch, all at once against one ``pushcamp serve``, with a push service that fails a few
per cent of the time. Bounded in time and size; loopback only.

What runs, for ``--seconds`` (60):

* ``--partners`` (5) partners, each trying ``--create-per-second`` (2) creates a second,
  faster than its create budget allows (30/min by default: a burst of 30, then one
  every 2 s), launching each campaign it could create (``/v2``, to its 20 subscribers)
  and reading its status;
* public traffic: browsers subscribing (``POST /v1/subscriptions``, new simulator
  subscriptions) and fetching the SDK configuration, ``--public-rps`` (20) per second;
* one launch to ``--subscribers`` (100,000) simulated subscribers of another partner,
  started as the traffic starts;
* the push-service simulator (its own process, decryption off) fails about
  ``--fault-rate`` (3 %) of the pushes: 503, 500, 429 with ``Retry-After: 0``,
  connections closed without an answer and connections reset.

Then it waits for the large launch to end (``--launch-timeout``, 900 s) and prints p50/p99
per endpoint, answers by status, pushes/s, the server's peak memory, and checks in the
database that every subscriber of the launch has exactly one terminal record (it exits 1
if not).

    .venv/bin/python bench/soak.py [--seconds 60] [--subscribers 100000]
                                   [--fault-rate 0.03] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cli, peak_rss_mb  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.store.models import Delivery, Subscriber  # noqa: E402
from pushcamp.testing.process import ServerProcess  # noqa: E402
from pushcamp.testing.simulator import Fault, SimulatorProcess  # noqa: E402

SMALL_AUDIENCE = 20  # subscribers of each rate-limited partner


def subscriptions(sim: SimulatorProcess, count: int, key: str) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    while len(made) < count:
        made += sim.client.subscribe_many(min(20_000, count - len(made)), key)
    return made


def import_subscribers(
    env: dict[str, str], partner: str, subs: list[dict[str, Any]], path: Path
) -> None:
    with path.open("w") as f:
        for s in subs:
            f.write(json.dumps({"endpoint": s["endpoint"], "keys": s["keys"]}) + "\n")
    cli(env, "subscribers", "import", partner, str(path), "--engaged-now")


class Recorder:
    """Latency per endpoint and answers by (endpoint, status); a client-side failure
    (no HTTP answer) counts as status 0."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[tuple[str, int]] = Counter()

    async def call(
        self, session: aiohttp.ClientSession, name: str, method: str, url: str, **kw: Any
    ) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            async with session.request(method, url, **kw) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            self.statuses[(name, 0)] += 1
            return 0, None
        self.latency[name].append(time.perf_counter() - started)
        self.statuses[(name, status)] += 1
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None


async def partner_loop(
    rec: Recorder,
    session: aiohttp.ClientSession,
    base: str,
    partner: str,
    token: str,
    until: float,
    per_second: float,
) -> None:
    """Create campaigns faster than the budget allows; launch each one created."""
    auth = {"Authorization": f"Bearer {token}"}
    n = 0
    while time.monotonic() < until:
        n += 1
        tick = time.monotonic()
        status, body = await rec.call(
            session,
            "POST /v1/single (create)",
            "POST",
            f"{base}/v1/single",
            json={
                "partner_id": partner,
                "title": f"soak {n}",
                "language": "all_ALL",
                "is_all": True,
            },
            headers=auth,
        )
        if status == 201 and body:
            cid = body["campaign_id"]
            await rec.call(
                session,
                "POST /v2/single/{id} (launch)",
                "POST",
                f"{base}/v2/single/{cid}",
                json={
                    "partner_id": partner,
                    "title": "Soak",
                    "description": "A push",
                    "link": "https://shop.pushcamp.dev/",
                    "ttl": 600,
                },
                headers=auth,
            )
            await rec.call(
                session, "GET /v1/single/{id}", "GET", f"{base}/v1/single/{cid}", headers=auth
            )
        await asyncio.sleep(max(0.0, 1 / per_second - (time.monotonic() - tick)))


async def public_loop(
    rec: Recorder,
    session: aiohttp.ClientSession,
    base: str,
    partner: str,
    pool: list[dict[str, Any]],
    until: float,
    per_second: float,
) -> None:
    """Browsers subscribing, and fetching the SDK's configuration."""
    i = 0
    while time.monotonic() < until and i < len(pool):
        tick = time.monotonic()
        s = pool[i]
        i += 1
        await rec.call(
            session,
            "POST /v1/subscriptions",
            "POST",
            f"{base}/v1/subscriptions",
            json={
                "partner_id": partner,
                "endpoint": s["endpoint"],
                "keys": s["keys"],
                "language": "en-US",
            },
        )
        await rec.call(session, "GET /sdk/{id}/config", "GET", f"{base}/sdk/{partner}/config")
        await asyncio.sleep(max(0.0, 1 / per_second - (time.monotonic() - tick)))


async def drive(
    base: str,
    partners: list[tuple[str, str]],
    public: tuple[str, list[dict[str, Any]]],
    seconds: float,
    public_rps: float,
    create_per_second: float,
    start_big: Callable[[aiohttp.ClientSession, Recorder], Any],
) -> Recorder:
    rec = Recorder()
    until = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await start_big(session, rec)
        loops = [
            partner_loop(rec, session, base, p, t, until, create_per_second) for p, t in partners
        ]
        # Public traffic from several concurrent "browsers".
        per_loop = public_rps / 4
        chunk = len(public[1]) // 4
        loops += [
            public_loop(
                rec,
                session,
                base,
                public[0],
                public[1][i * chunk : (i + 1) * chunk],
                until,
                per_loop,
            )
            for i in range(4)
        ]
        await asyncio.gather(*loops)
    return rec


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--partners", type=int, default=5)
    parser.add_argument("--public-rps", type=float, default=20)
    parser.add_argument("--create-per-second", type=float, default=2.0)
    parser.add_argument("--fault-rate", type=float, default=0.03, help="0.01 to 0.05")
    parser.add_argument("--launch-timeout", type=float, default=900)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    if not 0 <= args.fault_rate <= 0.2:
        raise SystemExit("--fault-rate is a fraction: 0.01 to 0.05")

    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(decrypt=False) as sim:
        work = Path(tmp)
        url = args.database_url or f"sqlite:///{work / 'soak.db'}"
        env = dict(
            os.environ,
            PUSHCAMP_DATABASE_URL=url,
            PUSHCAMP_PUSH_ALLOWED_HOSTS="127.0.0.1",
            PUSHCAMP_LOG_LEVEL="WARNING",
            PUSHCAMP_PUBLIC_PER_IP_LIMIT="1000000",
        )
        cli(env, "db", "upgrade")
        tag = secrets.token_hex(3)
        say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

        say(f"making {args.subscribers:,} subscriptions for the large launch...")
        big = f"soakbig{tag}"
        cli(env, "partners", "create", big, "--v1-limit", "1000", "--v2-limit", "1000")
        big_token = cli(env, "tokens", "create", big)
        big_subs = subscriptions(sim, args.subscribers, cli(env, "vapid", "show", big))
        import_subscribers(env, big, big_subs, work / "big.jsonl")
        del big_subs

        say(f"{args.partners} partners at their default limits, public subscriptions...")
        partners = []
        for i in range(args.partners):
            pid = f"soak{i}{tag}"
            cli(env, "partners", "create", pid)  # default limits: create 30/min
            subs = subscriptions(sim, SMALL_AUDIENCE, cli(env, "vapid", "show", pid))
            import_subscribers(env, pid, subs, work / f"p{i}.jsonl")
            partners.append((pid, cli(env, "tokens", "create", pid)))
        public_partner = partners[0][0]
        pool = subscriptions(
            sim, int(args.public_rps * args.seconds) + 8, cli(env, "vapid", "show", public_partner)
        )

        # The faults, a few per cent in all (each a share of every push).
        share = args.fault_rate
        faults = [
            (Fault.unavailable(), share * 0.35),
            (Fault.server_error(500), share * 0.25),
            (Fault.too_many_requests(retry_after=0), share * 0.10),
            (Fault.dropped(), share * 0.15),
            (Fault.connection_reset(), share * 0.15),
        ]
        for fault, rate in faults:
            sim.client.add_fault_rate(fault, rate)
        stats_before = sim.client.stats()

        server = ServerProcess(url, work / "server.log", env=env).start()
        big_launch: dict[str, Any] = {}
        try:
            base = server.url

            async def start_big(session: aiohttp.ClientSession, rec: Recorder) -> None:
                auth = {"Authorization": f"Bearer {big_token}"}
                _, body = await rec.call(
                    session,
                    "POST /v1/single (create)",
                    "POST",
                    f"{base}/v1/single",
                    json={
                        "partner_id": big,
                        "title": "soak",
                        "language": "all_ALL",
                        "is_all": True,
                    },
                    headers=auth,
                )
                big_launch["campaign_id"] = body["campaign_id"]
                big_launch["started"] = time.perf_counter()
                status, answer = await rec.call(
                    session,
                    "POST /v2/single/{id} (launch)",
                    "POST",
                    f"{base}/v2/single/{body['campaign_id']}",
                    json={
                        "partner_id": big,
                        "title": "Soak",
                        "description": "To everyone",
                        "link": "https://shop.pushcamp.dev/",
                        "ttl": 3600,
                    },
                    headers=auth,
                )
                if status != 200:
                    raise SystemExit(f"the large launch was answered {status}: {answer}")

            say(f"running for {args.seconds:.0f} s...")
            rec = asyncio.run(
                drive(
                    base,
                    partners,
                    (public_partner, pool),
                    args.seconds,
                    args.public_rps,
                    args.create_per_second,
                    start_big,
                )
            )
            say("traffic over; waiting for the large launch to end...")
            deadline = time.monotonic() + args.launch_timeout
            cid = big_launch["campaign_id"]
            import httpx

            with httpx.Client(base_url=base, timeout=30) as c:
                while True:
                    r = c.get(f"/v1/single/{cid}", headers={"Authorization": big_token})
                    launch = r.json()["launches"][0]
                    if launch["status"] not in ("Queued", "Sending"):
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the large launch did not end: {launch}")
                    time.sleep(0.5)
            big_seconds = time.perf_counter() - big_launch["started"]
            peak = peak_rss_mb(server.pid)
        finally:
            server.stop()
        stats = sim.client.stats()

        db = Database(Settings(database_url=url))
        with db.read() as conn:
            audience = conn.execute(
                select(func.count()).select_from(Subscriber).where(Subscriber.partner_id == big)
            ).scalar_one()
            records, distinct = conn.execute(
                select(func.count(), func.count(func.distinct(Delivery.subscriber_id))).where(
                    Delivery.launch_id == launch["launch_id"]
                )
            ).one()
            outcomes = Counter(
                {
                    f"{state} {reason or ''}".strip(): n
                    for state, reason, n in conn.execute(
                        select(Delivery.state, Delivery.reason, func.count())
                        .where(Delivery.launch_id == launch["launch_id"])
                        .group_by(Delivery.state, Delivery.reason)
                    )
                }
            )
        db.dispose()

    requests = stats["requests"] - stats_before["requests"]
    print(
        f"\nbackend: {url.split(':')[0]}; cores: {os.cpu_count()}; traffic for {args.seconds:.0f} s"
    )
    print(f"faults: {share:.1%} of pushes (503, 500, 429 Retry-After 0, closed, reset)")
    print(f"\n{'endpoint':<32} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name in sorted(rec.latency):
        values = rec.latency[name]
        print(
            f"{name:<32} {len(values):>9,} {percentile(values, 0.5) * 1000:>8.1f}"
            f" {percentile(values, 0.99) * 1000:>8.1f}"
        )
    print(f"\n{'endpoint':<32} {'status':>6} {'answers':>9}")
    for (name, status), n in sorted(rec.statuses.items()):
        print(f"{name:<32} {status or 'none':>6} {n:>9,}")
    print(
        f"\nlarge launch: {args.subscribers:,} subscribers, {launch['status']} in"
        f" {big_seconds:.1f} s = {args.subscribers / big_seconds:,.0f} pushes/s (first tries; "
        f"{requests:,} push requests in all, retries included)"
    )
    print(
        "push service answered: "
        + ", ".join(f"{k}: {v:,}" for k, v in stats["statuses"].items())
        + " (0: closed or reset without an answer)"
    )
    print(f"records: {', '.join(f'{k} {v:,}' for k, v in sorted(outcomes.items()))}")
    print(f"server peak memory (VmHWM): {peak:.0f} MB")
    ok = records == distinct == audience == args.subscribers and launch["status"] == "Sent"
    print(
        f"check: {audience:,} subscribers, {records:,} records, {distinct:,} distinct: "
        + ("exactly one terminal record each" if ok else "FAILED")
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
