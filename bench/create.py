"""Create-campaign throughput and latency beside the same server's /healthz.

Starts ``pushcamp serve`` on the embedded default (a fresh SQLite file) unless --url is
given, raises the partner's limits, then for 1, 10 and 50 concurrent clients runs
/healthz and POST /v1/single for --seconds each and prints requests/s, p50 and p99
latency, and the create/healthz ratio. It prints figures; it never passes or fails.

    .venv/bin/python bench/create.py [--seconds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.services import partners, tokens  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.testing.process import ServerProcess  # noqa: E402


async def run_load(
    url: str, concurrency: int, seconds: float, make_request
) -> tuple[int, list[float], dict[int, int]]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with make_request(session, w, i) as resp:
                    await resp.read()
                    codes[resp.status] = codes.get(resp.status, 0) + 1
                latencies.append(time.perf_counter() - start)
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), latencies, codes


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def main_async(url: str, partner_id: str, token: str, seconds: float) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    run_id = secrets.token_hex(3)

    def healthz(session, _w, _i):
        return session.get("/healthz")

    def create(session, w, i):
        body = {
            "partner_id": partner_id,
            "title": f"bench {run_id} c{concurrency} {w}-{i}",
            "language": "en_US",
            "is_all": False,
        }
        return session.post("/v1/single", json=body, headers=auth)

    print(f"{'clients':>7} {'endpoint':<14} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  statuses")
    for concurrency in (1, 10, 50):
        results = {}
        for name, fn in (("GET /healthz", healthz), ("POST /v1/single", create)):
            rps, lat, codes = await run_load(url, concurrency, seconds, fn)
            results[name] = rps
            print(
                f"{concurrency:>7} {name:<14} {rps:>7} {pct(lat, 50):>7.2f} "
                f"{pct(lat, 99):>7.2f}  {dict(sorted(codes.items()))}"
            )
        ratio = results["POST /v1/single"] / max(1, results["GET /healthz"])
        print(f"{concurrency:>7} create/healthz ratio: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file (the embedded default)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(Settings(database_url=url))
        db.migrate()
        partner_id = f"bench{secrets.token_hex(3)}"
        partners.create_partner(db, partner_id, "bench", v1_limit=10_000_000)
        token = tokens.create_token(db, partner_id)
        db.dispose()
        log = Path(tmp) / "server.log"
        with ServerProcess(url, log) as server:
            print(f"server {server.url} on {url.split(':')[0]}; {args.seconds:.0f}s per run")
            asyncio.run(main_async(server.url, partner_id, token, args.seconds))


if __name__ == "__main__":
    main()
