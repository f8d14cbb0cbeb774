"""End-to-end launch throughput and the server's memory, for growing audiences.

For each audience size (10,000 and 100,000 by default) this makes that many
subscriptions at the push-service simulator (a separate process, decryption off so it
keeps up), imports them for a fresh partner with ``pushcamp subscribers import``, starts
``pushcamp serve`` on the embedded default (a fresh SQLite file, in-process delivery),
creates and launches a campaign, and waits until the simulator has accepted every push.
It prints the time from the launch request to the last push, pushes/s, and the server
process's peak resident memory (VmHWM) — the figure that must not grow with the
audience.

As a reference, in the same run and at each audience size, the same subscriptions are
sent the same payload by the bare protocol library (``WebPushSender.send_many``, no
database, no records): the gap between the two rows is what durability costs. The
reference runs twice: on asyncio's own loop (the library's default, a caller's
``asyncio.run``), and on uvloop, the loop ``pushcamp serve`` and ``pushcamp worker`` run
the engine on; the engine's rate is printed over each.

    .venv/bin/python bench/launch.py [--sizes 10000,100000] [--database-url URL]
                                     [--counters on|off|both] [--repeat N]
                                     [--worker] [--profile DIR] [--in-place]

The floor: every run also measures, in this bench process and in the same run, the CPU
that RFC 8291 encryption alone costs per message (``pushcamp.webpush.encrypt`` in a
loop: a fresh P-256 key, ECDH, HKDF, AES-GCM, exactly what each push needs), and prints
the server's CPU per push next to it and their ratio ("× enc"): what each push costs over
the part no implementation can skip. The bare sender's own CPU per message is printed
the same way.

``--worker`` runs the scaled-out mode instead of in-process delivery: ``pushcamp serve``
with in-process delivery off and one ``pushcamp worker`` (Celery, on the local Redis,
``--broker-url``) with its default threads, 4 batches at once, as the in-process runner
sends (``--worker-concurrency N`` to change it); the CPU counted is then the server's
plus the worker process tree's. ``--profile DIR`` records a py-spy flame graph (SVG) of
the process that sends (the server, or the worker) during each launch.

``--in-place`` also times the encryption where it runs: a ``sitecustomize`` module (on
the server's and the worker's ``PYTHONPATH`` only) wraps the sender's ``encrypt`` and
adds up its thread CPU, so the column "in place" is the encryption's cost inside the
launch itself and "×" beside it the server's CPU over it: the same ratio, without the
drift between the launch and a separate measurement on a machine whose load moves
(the wrapper adds two clock reads per push to the server's CPU).

``--counters off`` measures what the statistics counters cost a launch: the server
process then records deliveries with the plain insert, without the counters (a
``sitecustomize`` module that only this bench puts on the server's ``PYTHONPATH``
replaces ``store.launches.record_deliveries``; nothing else differs: same code, same
run, same simulator). ``both`` alternates on and off ``--repeat`` times per size and
prints the medians and their ratio. Each run checks that the counters say what it
expects (the launch's ``sent`` from ``GET /v1/single/{id}`` is the audience with them,
0 without).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cli, cpu_seconds, peak_rss_mb  # noqa: E402
from pushcamp.delivery.celery_app import new_event_loop  # noqa: E402
from pushcamp.testing.process import ServerProcess, WorkerProcess  # noqa: E402
from pushcamp.testing.simulator import SimulatorProcess  # noqa: E402
from pushcamp.webpush import (  # noqa: E402
    PushOptions,
    Subscription,
    Vapid,
    WebPushSender,
    encrypt,
)

T = TypeVar("T")

# About the size of what the engine sends: title, body, link, icon and the event token.
FLOOR_PAYLOAD = json.dumps(
    {
        "title": "Benchmark",
        "body": "A push to every subscriber",
        "url": "https://shop.pushcamp.dev/sale",
        "icon": "https://shop.pushcamp.dev/i/icon-192.png",
        "t": "d." + "x" * 120,
    },
    separators=(",", ":"),
).encode()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (a Celery worker and its pool)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def tree_cpu_seconds(pids: list[int]) -> dict[int, float]:
    cpu = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            cpu[pid] = cpu_seconds(pid)
    return cpu


def encryption_cpu_us(messages: int = 3000) -> float:
    """CPU per message of RFC 8291 encryption alone, in this process (one thread)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pushcamp.webpush import b64url_encode

    browser = ec.generate_private_key(ec.SECP256R1())
    point = browser.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    sub = Subscription.from_json(
        {
            "endpoint": "https://push.example.net/p/1",
            "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(os.urandom(16))},
        }
    )
    encrypt(FLOOR_PAYLOAD, sub)
    start = time.process_time()
    for _ in range(messages):
        encrypt(FLOOR_PAYLOAD, sub)
    return (time.process_time() - start) / messages * 1e6


def start_profile(pid: int, svg: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--output",
            str(svg),
            "--rate",
            "50",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # py-spy writes the SVG when interrupted
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(sim: SimulatorProcess, total: int, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if sim.client.stats()["requests"] >= total:
            return time.perf_counter()
        time.sleep(0.02)
    raise SystemExit(f"timed out: the simulator saw {sim.client.stats()['requests']} of {total}")


# The server's sitecustomize for ``--counters off``: the insert the engine used before the
# statistics counters, and nothing else.
WITHOUT_COUNTERS = """
import pushcamp.store.launches as launches


def record_deliveries(conn, rows):
    if rows:
        launches._insert_records(conn, rows)


launches.record_deliveries = record_deliveries
"""


# The sitecustomize for ``--in-place``: the encryption each push's sender calls, timed
# where it runs (thread CPU), its totals written to a file per process every 200 calls.
ENCRYPTION_IN_PLACE = """
import os
import time

import pushcamp.webpush._sender as sender

_encrypt = sender.encrypt
_path = os.path.join(os.environ["PUSHCAMP_BENCH_ENC_DIR"], str(os.getpid()))
_total = [0.0, 0]


def encrypt(payload, subscription):
    start = time.thread_time()
    body = _encrypt(payload, subscription)
    _total[0] += time.thread_time() - start
    _total[1] += 1
    if _total[1] % 200 == 0:
        with open(_path, "w") as f:
            f.write(f"{_total[0]} {_total[1]}")
    return body


sender.encrypt = encrypt
"""


def encryption_in_place_us(directory: Path) -> float:
    """CPU per encryption as timed inside the sending processes (ENCRYPTION_IN_PLACE)."""
    seconds = calls = 0.0
    for path in directory.iterdir():
        spent, count = path.read_text().split()
        seconds, calls = seconds + float(spent), calls + int(count)
        path.unlink()
    return seconds / calls * 1e6 if calls else float("nan")


def launch_run(
    size: int,
    database_url: str,
    workdir: Path,
    sim: SimulatorProcess,
    counters: bool = True,
    broker_url: str | None = None,
    profile: Path | None = None,
    in_place: bool = False,
    worker_concurrency: int | None = None,
) -> dict[str, float]:
    env = dict(
        os.environ,
        PUSHCAMP_DATABASE_URL=database_url,
        PUSHCAMP_PUSH_ALLOWED_HOSTS="127.0.0.1",
        PUSHCAMP_LOG_LEVEL="WARNING",
    )
    server_env = dict(env)
    if broker_url:
        server_env.update(
            PUSHCAMP_BROKER_URL=broker_url,
            PUSHCAMP_DELIVERY_IN_PROCESS="false",
        )
    site_parts = ([] if counters else [WITHOUT_COUNTERS]) + (
        [ENCRYPTION_IN_PLACE] if in_place else []
    )
    enc_dir = workdir / "encryption-in-place"
    if in_place:
        enc_dir.mkdir(exist_ok=True)
        server_env["PUSHCAMP_BENCH_ENC_DIR"] = str(enc_dir)
    if site_parts:
        site = workdir / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text("\n".join(site_parts))
        paths = [str(site), str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
        server_env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    partner = f"bench{size}{secrets.token_hex(3)}"
    cli(env, "partners", "create", partner, "--v1-limit", "100000", "--v2-limit", "100000")
    token = cli(env, "tokens", "create", partner)
    sim.client.reset()  # forgets the previous run's subscriptions and counters
    # Bound to the partner's key, as its site's SDK subscribes: a push signed otherwise is 403.
    subs = sim.client.subscribe_many(
        size, application_server_key=cli(env, "vapid", "show", partner)
    )
    source = workdir / f"subs-{size}.jsonl"
    with source.open("w") as f:
        for s in subs:
            f.write(json.dumps({"endpoint": s["endpoint"], "keys": s["keys"]}) + "\n")
    cli(env, "subscribers", "import", partner, str(source), "--engaged-now")
    log = workdir / f"server-{size}-{'on' if counters else 'off'}.log"
    server = ServerProcess(database_url, log_path=log, env=server_env).start()
    worker = None
    try:
        if broker_url:
            import redis

            redis.Redis.from_url(broker_url).flushdb()  # no task left from an earlier run
            worker = WorkerProcess(
                database_url,
                log_path=workdir / f"worker-{size}.log",
                env={**server_env, "PUSHCAMP_LOG_LEVEL": "INFO"},  # it logs "ready" at INFO
                concurrency=worker_concurrency,
            ).start()
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
        pids = [server.pid] + (descendants(worker.pid) if worker else [])
        cpu_before = tree_cpu_seconds(pids)
        sender_pid = pids[-1]  # the server, or the worker's pool child that sends
        spy = start_profile(sender_pid, profile / f"launch-{size}.svg") if profile else None
        started = time.perf_counter()
        answered = client.post(f"/v2/single/{campaign_id}", json=body)
        answer_ms = (time.perf_counter() - started) * 1000
        answered.raise_for_status()
        last = wait_for(sim, size, timeout=600)
        seconds = last - started
        cpu_after = tree_cpu_seconds(pids)
        cpu = sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after)
        if spy:
            stop_profile(spy)
        # The status endpoint says when every record is written, too.
        while (launch := client.get(f"/v1/single/{campaign_id}").json()["launches"][0])[
            "status"
        ] != "Sent":
            time.sleep(0.05)
        counted = launch["sent"]
        if counted != (size if counters else 0):
            raise SystemExit(f"counters {'on' if counters else 'off'}: sent says {counted}")
        return {
            "counters": counters,
            "size": size,
            "answer_ms": answer_ms,
            "seconds": seconds,
            "rate": size / seconds,
            "rss_start": base_rss,
            "rss_peak": peak_rss_mb(server.pid),
            "cpu_share": cpu / seconds,
            "cpu_us": cpu / size * 1e6,
            "enc_us": encryption_cpu_us(),  # the floor, measured right after this launch
            "enc_in_place_us": encryption_in_place_us(enc_dir) if in_place else float("nan"),
        }
    finally:
        if worker:
            worker.stop()
        server.stop()


async def reference_run(sim: SimulatorProcess, size: int) -> tuple[float, float]:
    """The bare protocol library sending to the same simulator, no DB, no records:
    (messages/s, CPU µs per message of this process)."""
    vapid = Vapid.generate("mailto:bench@pushcamp.dev")
    sim.client.reset()
    subs = [
        Subscription.from_json(s)
        for s in sim.client.subscribe_many(size, application_server_key=vapid.public_key)
    ]
    options = PushOptions(ttl=3600, topic="bench")
    payload = json.dumps({"title": "Benchmark", "body": "A push", "url": "https://x.dev"})
    async with WebPushSender(vapid, per_host=200, max_pending=400) as sender:
        started = time.perf_counter()
        cpu = time.process_time()
        async for _ in sender.send_many((s, payload, options) for s in subs):
            pass
        cpu = time.process_time() - cpu
        return size / (time.perf_counter() - started), cpu / size * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--counters", choices=("on", "off", "both"), default="on")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and mode")
    parser.add_argument(
        "--worker", action="store_true", help="send with one Celery worker, not in-process"
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=None,
        help="with --worker: its threads (batches at once); default: the worker's own (4)",
    )
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/14",
        help="with --worker: a Redis database of its own (the bench empties it)",
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy SVGs into DIR")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="also time the encryption inside the sending process (its share of the CPU)",
    )
    args = parser.parse_args()
    broker_url = args.broker_url if args.worker else None
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.counters]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(decrypt=False) as sim:
        workdir = Path(tmp)
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
        for size in sizes:
            for i in range(args.repeat):
                # Alternate the modes, and which goes first, so drift hits both alike.
                for counters in modes if i % 2 == 0 else modes[::-1]:
                    print(
                        f"launching to {size:,} subscribers, counters "
                        f"{'on' if counters else 'off'}...",
                        file=sys.stderr,
                        flush=True,
                    )
                    rows.append(
                        launch_run(
                            size,
                            database_url,
                            workdir,
                            sim,
                            counters,
                            broker_url,
                            args.profile,
                            args.in_place,
                            args.worker_concurrency,
                        )
                    )
        # The bare sender to the same simulator, at each audience size.
        references = {size: asyncio.run(reference_run(sim, size)) for size in sizes}
        on_uvloop = {size: _on_uvloop(reference_run(sim, size)) for size in sizes}
        enc_now = encryption_cpu_us()
    threads = args.worker_concurrency or int(os.environ.get("PUSHCAMP_DELIVERY_WORKERS", "4"))
    mode = f"one Celery worker ({threads} threads)" if broker_url else "in-process"
    print(f"\nbackend: {database_url.split(':')[0]}; delivery: {mode}; cores: {os.cpu_count()}")
    header = (
        "audience",
        "counters",
        "200 in",
        "to last push",
        "pushes/s",
        "RSS start",
        "RSS peak",
        "CPU",
        "enc alone",
        "× enc",
    )
    print("{:>10} {:>8} {:>8} {:>13} {:>9} {:>10} {:>9} {:>16} {:>10} {:>6}".format(*header))
    for r in rows:
        print(
            f"{r['size']:>10,} {'on' if r['counters'] else 'off':>8}"
            f" {r['answer_ms']:>6.0f}ms {r['seconds']:>12.2f}s {r['rate']:>9,.0f}"
            f" {r['rss_start']:>8.0f}MB {r['rss_peak']:>7.0f}MB"
            f" {r['cpu_share']:>5.0%} {r['cpu_us']:>4.0f}µs/push"
            f" {r['enc_us']:>6.0f}µs/m {r['cpu_us'] / r['enc_us']:>5.2f}x"
            + (
                f"   in place {r['enc_in_place_us']:.0f}µs/m"
                f" {r['cpu_us'] / r['enc_in_place_us']:.2f}x"
                if args.in_place
                else ""
            )
        )
    if len(modes) == 2:
        for size in sizes:
            on = [r for r in rows if r["size"] == size and r["counters"]]
            off = [r for r in rows if r["size"] == size and not r["counters"]]
            rate_on = statistics.median(r["rate"] for r in on)
            rate_off = statistics.median(r["rate"] for r in off)
            cpu_on = statistics.median(r["cpu_us"] for r in on)
            cpu_off = statistics.median(r["cpu_us"] for r in off)
            print(
                f"{size:,}, median of {len(on)}: {rate_on:,.0f} pushes/s with counters,"
                f" {rate_off:,.0f} without ({(rate_on / rate_off - 1) * 100:+.1f} %);"
                f" server CPU {cpu_on:.0f} vs {cpu_off:.0f} µs/push"
                f" ({(cpu_on / cpu_off - 1) * 100:+.1f} %)"
            )
    elif len(rows) > 1 and len(sizes) > 1:
        growth = (rows[-1]["rss_peak"] / rows[0]["rss_peak"] - 1) * 100
        print(f"peak memory, {rows[-1]['size']:,} vs {rows[0]['size']:,}: {growth:+.1f}%")
    for size, (reference, reference_cpu) in references.items():
        print(
            f"reference: WebPushSender alone (no DB, no records), {size:,} messages:"
            f" {reference:,.0f}/s, {reference_cpu:.0f} µs CPU/message,"
            f" encryption alone {enc_now:.0f} µs/message ({reference_cpu / enc_now:.2f}x)"
        )
    for size, (reference, reference_cpu) in on_uvloop.items():
        print(
            f"reference on uvloop, {size:,} messages: {reference:,.0f}/s,"
            f" {reference_cpu:.0f} µs CPU/message ({reference_cpu / enc_now:.2f}x)"
        )
    for r in rows:
        bare = references[int(r["size"])][0]
        print(f"engine / bare sender, {r['size']:,}: {r['rate'] / bare:.2f}x")
        bare = on_uvloop[int(r["size"])][0]
        print(f"engine / bare sender on uvloop, {r['size']:,}: {r['rate'] / bare:.2f}x")


def _on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop, as the server and the worker run the engine."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


if __name__ == "__main__":
    main()
