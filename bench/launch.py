"""End-to-end launch throughput and the server's memory, for growing audiences.

For each audience size (10,000 and 100,000 by default) this makes that many
subscriptions at the push-service simulator (a separate process, decryption off so it
keeps up), imports them for a fresh partner with ``pushcamp subscribers import``, starts
``pushcamp serve`` on the embedded default (a fresh SQLite file, in-process delivery),
creates and launches a campaign, and waits until the simulator has accepted every push.
It prints the time from the launch request to the last push, pushes/s, and the server
process's peak resident memory (VmHWM) — the figure that must not grow with the
audience.

As a reference, in the same run, the same subscriptions are sent the same payload by
the bare protocol library (``WebPushSender.send_many``, no database, no records): the
gap between the two rows is what durability costs.

    .venv/bin/python bench/launch.py [--sizes 10000,100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.testing.process import ServerProcess  # noqa: E402
from pushcamp.testing.simulator import SimulatorProcess  # noqa: E402
from pushcamp.webpush import PushOptions, Subscription, Vapid, WebPushSender  # noqa: E402


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pushcamp", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"pushcamp {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(sim: SimulatorProcess, total: int, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if sim.client.stats()["requests"] >= total:
            return time.perf_counter()
        time.sleep(0.02)
    raise SystemExit(f"timed out: the simulator saw {sim.client.stats()['requests']} of {total}")


def launch_run(
    size: int, database_url: str, workdir: Path, sim: SimulatorProcess
) -> dict[str, float]:
    env = dict(
        os.environ,
        PUSHCAMP_DATABASE_URL=database_url,
        PUSHCAMP_PUSH_ALLOWED_HOSTS="127.0.0.1",
        PUSHCAMP_LOG_LEVEL="WARNING",
    )
    partner = f"bench{size}{secrets.token_hex(3)}"
    cli(env, "partners", "create", partner, "--v1-limit", "100000", "--v2-limit", "100000")
    token = cli(env, "tokens", "create", partner)
    # Bound to the partner's key, as its site's SDK subscribes: a push signed otherwise is 403.
    subs = sim.client.subscribe_many(
        size, application_server_key=cli(env, "vapid", "show", partner)
    )
    source = workdir / f"subs-{size}.jsonl"
    with source.open("w") as f:
        for s in subs:
            f.write(json.dumps({"endpoint": s["endpoint"], "keys": s["keys"]}) + "\n")
    cli(env, "subscribers", "import", partner, str(source), "--engaged-now")
    sim.client.reset()
    server = ServerProcess(database_url, log_path=workdir / f"server-{size}.log", env=env).start()
    try:
        base_rss = peak_rss_mb(server.pid)
        client = httpx.Client(base_url=server.url, headers={"Authorization": token}, timeout=30)
        created = client.post(
            "/v1/single",
            json={
                "partner_id": partner,
                "title": f"bench {size}",
                "language": "all_ALL",
                "is_all": True,
            },
        )
        created.raise_for_status()
        campaign_id = created.json()["campaign_id"]
        body = {
            "partner_id": partner,
            "title": "Benchmark",
            "description": "A push to every subscriber",
            "link": "https://shop.pushcamp.dev/sale",
            "ttl": 3600,
        }
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        answered = client.post(f"/v2/single/{campaign_id}", json=body)
        answer_ms = (time.perf_counter() - started) * 1000
        answered.raise_for_status()
        last = wait_for(sim, size, timeout=600)
        seconds = last - started
        cpu = cpu_seconds(server.pid) - cpu_before
        # The status endpoint says when every record is written, too.
        while client.get(f"/v1/single/{campaign_id}").json()["launches"][0]["status"] != "Sent":
            time.sleep(0.05)
        return {
            "size": size,
            "answer_ms": answer_ms,
            "seconds": seconds,
            "rate": size / seconds,
            "rss_start": base_rss,
            "rss_peak": peak_rss_mb(server.pid),
            "cpu_share": cpu / seconds,
            "cpu_us": cpu / size * 1e6,
        }
    finally:
        server.stop()


async def reference_run(sim: SimulatorProcess, size: int) -> float:
    """The bare protocol library sending to the same simulator: no DB, no records."""
    vapid = Vapid.generate("mailto:bench@pushcamp.dev")
    subs = [
        Subscription.from_json(s)
        for s in sim.client.subscribe_many(size, application_server_key=vapid.public_key)
    ]
    sim.client.reset()
    options = PushOptions(ttl=3600, topic="bench")
    payload = json.dumps({"title": "Benchmark", "body": "A push", "url": "https://x.dev"})
    async with WebPushSender(vapid, per_host=200, max_pending=400) as sender:
        started = time.perf_counter()
        async for _ in sender.send_many((s, payload, options) for s in subs):
            pass
        return size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(decrypt=False) as sim:
        workdir = Path(tmp)
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
        for size in sizes:
            print(f"launching to {size:,} subscribers...", file=sys.stderr, flush=True)
            rows.append(launch_run(size, database_url, workdir, sim))
        reference = asyncio.run(reference_run(sim, min(sizes)))
    print(f"\nbackend: {database_url.split(':')[0]}; cores: {os.cpu_count()}")
    header = ("audience", "200 in", "to last push", "pushes/s", "RSS start", "RSS peak", "CPU")
    print("{:>10} {:>8} {:>13} {:>9} {:>10} {:>9} {:>16}".format(*header))
    for r in rows:
        print(
            f"{r['size']:>10,} {r['answer_ms']:>6.0f}ms {r['seconds']:>12.2f}s {r['rate']:>9,.0f}"
            f" {r['rss_start']:>8.0f}MB {r['rss_peak']:>7.0f}MB"
            f" {r['cpu_share']:>5.0%} {r['cpu_us']:>4.0f}µs/push"
        )
    if len(rows) > 1:
        growth = (rows[-1]["rss_peak"] / rows[0]["rss_peak"] - 1) * 100
        print(f"peak memory, {rows[-1]['size']:,} vs {rows[0]['size']:,}: {growth:+.1f}%")
    print(
        f"reference: WebPushSender alone (no DB, no records), {min(sizes):,} messages:"
        f" {reference:,.0f}/s"
    )


if __name__ == "__main__":
    main()
