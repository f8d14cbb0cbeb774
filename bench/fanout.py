"""Fan-out throughput: 10,000 Web Push messages to the push-service simulator.

Runs, against a simulator in its own process (decryption checking on, then off):

* pushcamp's ``WebPushSender`` in one process;
* pywebpush's ``webpush()`` called in a loop (its documented one-call use);
* pywebpush's ``webpush_async()`` with one shared aiohttp session, 100 in flight;
* pushcamp's ``WebPushSender`` in two processes, half the messages each.

``--clients`` instead compares the HTTP clients alone (aiohttp, httpx) on pre-encrypted
messages at 10 and 100 in flight: the measurement behind the sender's choice of client.

Each contender runs in a fresh child process, so "peak RSS" is its own. Printed:
messages/s, pushcamp's ratio to each pywebpush way, peak memory, and how many messages
the simulator accepted (a contender that sends fast but wrong would show here). It
prints figures; it never passes or fails.

    .venv/bin/python bench/fanout.py [--messages 10000] [--only-decrypt on|off] [--clients]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.testing.simulator import SimulatorProcess  # noqa: E402
from pushcamp.webpush import PushOptions, Vapid, WebPushSender  # noqa: E402

CONTACT = "mailto:bench@pushcamp.dev"
IN_FLIGHT = 100
# About 200 bytes, the size of a typical notification (title, body, icon, link, token).
PAYLOAD = json.dumps(
    {
        "title": "Spring sale: 20% off everything",
        "body": "Only this weekend, on every order above 50.",
        "icon": "https://shop.pushcamp.dev/i/icon-192.png",
        "link": "https://shop.pushcamp.dev/sale?utm_source=push",
        "t": "d.8f3a2c91e4b7",
    },
    separators=(",", ":"),
)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- contenders (each runs in its own child process) -----------------------------------
async def _pushcamp(subs: list[dict[str, Any]], key: str) -> tuple[int, float, float]:
    vapid = Vapid(key, CONTACT)
    options = PushOptions(ttl=3600)
    start = time.monotonic()
    ok = 0
    async with WebPushSender(vapid, per_host=IN_FLIGHT) as sender:
        # Subscriptions go in as toJSON() dicts, as pywebpush gets them: parsing is timed.
        async for result in sender.send_many((s, PAYLOAD, options) for s in subs):
            ok += result.ok
    return ok, start, time.monotonic()


def _pywebpush_loop(subs: list[dict[str, Any]], key: str) -> tuple[int, float, float]:
    from pywebpush import WebPushException, webpush

    start = time.monotonic()
    ok = 0
    for sub in subs:
        try:
            webpush(sub, PAYLOAD, vapid_private_key=key, vapid_claims={"sub": CONTACT}, ttl=3600)
            ok += 1
        except WebPushException:
            pass
    return ok, start, time.monotonic()


async def _pywebpush_async(subs: list[dict[str, Any]], key: str) -> tuple[int, float, float]:
    import aiohttp
    from pywebpush import WebPushException, webpush_async

    semaphore = asyncio.Semaphore(IN_FLIGHT)
    ok = 0

    async def one(session: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
        nonlocal ok
        async with semaphore:
            try:
                response = await webpush_async(
                    sub,
                    PAYLOAD,
                    vapid_private_key=key,
                    vapid_claims={"sub": CONTACT},
                    ttl=3600,
                    aiohttp_session=session,
                )
            except WebPushException:
                return
            if not isinstance(response, str):
                response.release()  # give the connection back to the pool
            ok += 1

    start = time.monotonic()
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, s) for s in subs))
    return ok, start, time.monotonic()


def _child(name: str, subs: list[dict[str, Any]], key: str, go: Any, out: Any) -> None:
    go.wait()  # every process starts together (matters for the two-process run)
    if name == "pushcamp":
        ok, start, end = asyncio.run(_pushcamp(subs, key))
    elif name == "pywebpush-loop":
        ok, start, end = _pywebpush_loop(subs, key)
    else:
        ok, start, end = asyncio.run(_pywebpush_async(subs, key))
    out.put((ok, start, end, _peak_rss_mib()))


def _run(name: str, subs: list[dict[str, Any]], key: str, processes: int = 1) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    shares = [subs[i::processes] for i in range(processes)]
    children = [ctx.Process(target=_child, args=(name, part, key, go, out)) for part in shares]
    for child in children:
        child.start()
    time.sleep(1.0)  # let the children import before the start signal
    go.set()
    reports = [out.get() for _ in children]
    for child in children:
        child.join()
    ok = sum(r[0] for r in reports)
    seconds = max(r[2] for r in reports) - min(r[1] for r in reports)
    return {
        "name": name if processes == 1 else f"{name} x{processes} processes",
        "ok": ok,
        "seconds": seconds,
        "rate": ok / seconds,
        "rss": max(r[3] for r in reports),
    }


def _bench(decrypt: bool, messages: int) -> None:
    vapid = Vapid.generate(CONTACT)
    key = vapid.private_key_b64()
    with SimulatorProcess(decrypt=decrypt) as simulator:
        client = simulator.client
        subs: list[dict[str, Any]] = []
        while len(subs) < messages:  # bound to the key every client signs with
            subs += client.subscribe_many(min(10_000, messages - len(subs)), vapid.public_key)
        print(
            f"\n## {messages:,} messages, simulator decryption checking "
            f"{'ON' if decrypt else 'OFF'} (simulator in its own process)"
        )
        rows = []
        for name, processes in (
            ("pushcamp", 1),
            ("pywebpush-loop", 1),
            ("pywebpush-async", 1),
            ("pushcamp", 2),
        ):
            before = client.stats()["accepted"]
            row = _run(name, subs, key, processes)
            row["accepted"] = client.stats()["accepted"] - before
            rows.append(row)
            print(
                f"  {row['name']:<28} {row['rate']:>8,.0f} msg/s  {row['seconds']:6.2f} s  "
                f"ok {row['ok']:>6,}  accepted by simulator {row['accepted']:>6,}  "
                f"peak RSS {row['rss']:6.1f} MiB",
                flush=True,
            )
        ours, loop, async_ = rows[0]["rate"], rows[1]["rate"], rows[2]["rate"]
        print(
            f"  ratios (one process): pushcamp / webpush() loop = {ours / loop:.2f}x, "
            f"pushcamp / webpush_async = {ours / async_:.2f}x; "
            f"two processes / one = {rows[3]['rate'] / ours:.2f}x"
        )


# -- HTTP clients alone (--clients): the measurement behind choosing aiohttp ----------
async def _client_rate(
    kind: str, requests: list[tuple[str, bytes, dict[str, str]]], in_flight: int
) -> float:
    import aiohttp
    import httpx

    semaphore = asyncio.Semaphore(in_flight)
    ok = 0
    start = time.monotonic()
    if kind == "aiohttp":
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str, body: bytes, headers: dict[str, str]) -> None:
                nonlocal ok
                async with semaphore, session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    ok += r.status == 201

            await asyncio.gather(*(one(*r) for r in requests))
    else:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(limits=limits) as client:

            async def one(url: str, body: bytes, headers: dict[str, str]) -> None:
                nonlocal ok
                async with semaphore:
                    r = await client.post(url, content=body, headers=headers)
                    ok += r.status_code == 201

            await asyncio.gather(*(one(*r) for r in requests))
    return ok / (time.monotonic() - start)


def _clients(messages: int) -> None:
    """Pre-encrypted messages, so only the HTTP client's own cost is compared."""
    from pushcamp.webpush import Subscription, encrypt

    vapid = Vapid.generate(CONTACT)
    with SimulatorProcess(decrypt=False) as simulator:
        subs = [
            Subscription.from_json(s)
            for s in simulator.client.subscribe_many(messages, vapid.public_key)
        ]
        options = PushOptions(ttl=3600).headers()
        requests = [
            (
                s.endpoint,
                encrypt(PAYLOAD.encode(), s),
                {**options, "Authorization": vapid.authorization(s.endpoint)},
            )
            for s in subs
        ]
        print(f"\n## HTTP client alone, {messages:,} pre-encrypted messages (HTTP/1.1)")
        for in_flight in (10, 100):
            for kind in ("aiohttp", "httpx"):
                rate = asyncio.run(_client_rate(kind, requests, in_flight))
                print(f"  {kind:<8} {in_flight:>4} in flight  {rate:>8,.0f} msg/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--only-decrypt", choices=["on", "off"], default=None)
    parser.add_argument(
        "--clients", action="store_true", help="only compare HTTP clients (aiohttp, httpx)"
    )
    args = parser.parse_args()
    print(f"# bench/fanout.py — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.clients:
        _clients(args.messages)
        return
    modes = {"on": [True], "off": [False], None: [True, False]}[args.only_decrypt]
    for decrypt in modes:
        _bench(decrypt, args.messages)


if __name__ == "__main__":
    main()
