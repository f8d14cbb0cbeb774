"""One partner's 30/min across three API processes: per-process limits against Redis.

Starts three ``pushcamp serve`` processes on one database (a fresh SQLite file unless
--database-url is given), first without PUSHCAMP_REDIS_URL (each process keeps its own
budgets), then with it (one budget in Redis), and each time sends --requests create
requests round-robin over the three, all at once, and prints how many got 201 and 429.
It prints figures; it never passes or fails (the test that does is
tests/integration/scaled/test_shared_limits.py).

    .venv/bin/python bench/shared_limits.py [--requests 120] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.services import partners, tokens  # noqa: E402
from pushcamp.settings import Settings  # noqa: E402
from pushcamp.store import Database  # noqa: E402
from pushcamp.testing.process import ServerProcess  # noqa: E402


async def burst(urls: list[str], token: str, partner_id: str, n: int) -> Counter[int]:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            async with session.post(
                f"{urls[i % len(urls)]}/v1/single",
                json={"partner_id": partner_id, "title": f"b{i}", "language": "en_US"},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                await resp.read()
                return resp.status

        return Counter(await asyncio.gather(*(one(i) for i in range(n))))


def run(database_url: str, redis_url: str | None, n: int, logs: Path) -> Counter[int]:
    db = Database(Settings(database_url=database_url))
    db.migrate()
    partner_id = f"b{secrets.token_hex(5)}"
    partners.create_partner(db, partner_id, "bench", 30, None)
    token = tokens.create_token(db, partner_id)
    db.dispose()
    env = {"PUSHCAMP_DELIVERY_IN_PROCESS": "false"}
    if redis_url:
        env |= {"PUSHCAMP_REDIS_URL": redis_url, "PUSHCAMP_REDIS_KEY_PREFIX": f"{partner_id}:"}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(ServerProcess(database_url, logs / f"server{i}.log", env=env))
            for i in range(3)
        ]
        return asyncio.run(burst([s.url for s in servers], token, partner_id, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"{args.requests} creates, one partner at 30/min, 3 API processes")
        for label, redis_url in (("per-process", None), ("Redis", args.redis_url)):
            codes = run(url, redis_url, args.requests, Path(tmp))
            print(
                f"  {label:<12} 201: {codes[201]:>4}   429: {codes[429]:>4}   other: "
                f"{sum(c for s, c in codes.items() if s not in (201, 429))}"
            )


if __name__ == "__main__":
    main()
