"""Create-campaign throughput and latency beside the same server's /healthz, and what
the HTTP layer's limits cost.

Starts the server on the embedded default (a fresh SQLite file) unless --database-url is
given, raises the partner's limits, then for 1, 10 and 50 concurrent clients runs
/healthz and POST /v1/single for --seconds each and prints requests/s, p50 and p99
latency, and the create/healthz ratio; then the creates again while 200 slow clients
hold half-sent requests. It does this for each HTTP protocol in --protocols: ``guarded``
(what ``pushcamp serve`` runs: h11 with pushcamp's deadlines and caps) and ``httptools``
(uvicorn's default, with no header cap or deadline), so the cost of the choice shows.
It prints figures; it never passes or fails.

    .venv/bin/python bench/create.py [--seconds 5] [--database-url URL] [--protocols guarded]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.services import partners, tokens  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402

# The server as ``pushcamp serve`` builds it, its protocol swapped when asked.
LAUNCHER = """
import sys
from pushcamp import logs
from pushcamp.api import create_app
from pushcamp.server import _Server, server_config
from pushcamp.settings import Settings
settings = Settings()
logs.configure("WARNING", True)
app = create_app(settings)
config = server_config(app, settings, "127.0.0.1", 0)
if sys.argv[1] != "guarded":
    config.http = sys.argv[1]
_Server(config).run()
"""
LISTENING = re.compile(r"pushcamp listening on (http://\S+)")
SLOW_CLIENTS = 200


@contextmanager
def server_process(database_url: str, protocol: str, log: Path) -> Iterator[str]:
    env = {**os.environ, "PUSHCAMP_DATABASE_URL": database_url}
    with open(log, "a", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, protocol],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # until it says where it listens
                if m := LISTENING.search(line):
                    yield m.group(1)
                    break
            else:
                raise RuntimeError(f"the server did not start; see {log}")
        finally:
            proc.terminate()
            proc.wait(timeout=15)


@contextmanager
def slow_clients(url: str, count: int) -> Iterator[None]:
    """``count`` connections that sent half a request and stall."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(b"POST /v1/single HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


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

    def create_for(label: str):
        def create(session, w, i):
            body = {
                "partner_id": partner_id,
                "title": f"bench {run_id} {label} {w}-{i}",
                "language": "en_US",
                "is_all": False,
            }
            return session.post("/v1/single", json=body, headers=auth)

        return create

    print(f"{'clients':>7} {'endpoint':<14} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  statuses")
    for concurrency in (1, 10, 50):
        results = {}
        for name, fn in (
            ("GET /healthz", healthz),
            ("POST /v1/single", create_for(f"c{concurrency}")),
        ):
            rps, lat, codes = await run_load(url, concurrency, seconds, fn)
            results[name] = rps
            print(
                f"{concurrency:>7} {name:<14} {rps:>7} {pct(lat, 50):>7.2f} "
                f"{pct(lat, 99):>7.2f}  {dict(sorted(codes.items()))}"
            )
        ratio = results["POST /v1/single"] / max(1, results["GET /healthz"])
        print(f"{concurrency:>7} create/healthz ratio: {ratio:.2f}")
    with slow_clients(url, SLOW_CLIENTS):
        rps, lat, codes = await run_load(url, 10, seconds, create_for("slow"))
    print(
        f"{10:>7} {'POST /v1/single':<14} {rps:>7} {pct(lat, 50):>7.2f} {pct(lat, 99):>7.2f}"
        f"  {dict(sorted(codes.items()))}  while {SLOW_CLIENTS} slow clients are connected"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file (the embedded default)"
    )
    parser.add_argument(
        "--protocols",
        default="guarded,httptools",
        help="comma-separated: guarded (pushcamp serve), httptools, h11 (uvicorn's, bare)",
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
        for protocol in args.protocols.split(","):
            with server_process(url, protocol, log) as server_url:
                print(
                    f"\n{protocol}: server {server_url} on {url.split(':')[0]}; "
                    f"{args.seconds:.0f}s per run"
                )
                asyncio.run(main_async(server_url, partner_id, token, args.seconds))


if __name__ == "__main__":
    main()
