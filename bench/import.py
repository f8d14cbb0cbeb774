"""Bulk import throughput and memory: ``pushcamp subscribers import`` on 100,000 and
1,000,000 lines, on a fresh SQLite file and on a fresh PostgreSQL database.

The JSON Lines files are generated first (distinct FCM endpoints; the P-256 keys come
from a pool of real key pairs, because generating a million takes longer than the
import, and the importer checks each key in full either way). Each import is the real
command line in a fresh child process: the time is that process's wall time (start-up and
migrations included) and the peak RSS its own (``wait4``), so flat memory shows as a 1M
peak close to the 100k one. It prints figures; it never passes or fails.

    .venv/bin/python bench/import.py [--lines 100000,1000000] [--pg-url URL] [--no-pg]
                                     [--batch-size N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pushcamp.webpush import b64url_encode  # noqa: E402

KEY_POOL = 300
LANGUAGES = ("en-US", "tr", "de-DE", "fr", "es-ES", "pt-BR", "ar", "en-GB")
ZONES = ("Europe/Istanbul", "Europe/Berlin", "America/New_York", "Asia/Tokyo", None)
BROWSERS = (
    ("Chrome", "Windows", "desktop"),
    ("Safari", "iOS", "mobile"),
    ("Firefox", "Linux", "desktop"),
    ("SamsungBrowser", "Android", "mobile"),
)


def key_pool(n: int) -> list[str]:
    fmt = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    return [
        b64url_encode(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*fmt))
        for _ in range(n)
    ]


def generate(path: Path, lines: int, keys: list[str]) -> None:
    """A realistic export: every line valid, a third with their own engagement time."""
    rng = random.Random(lines)
    run = secrets.token_hex(4)
    dumps = json.dumps
    with path.open("w", encoding="utf-8", buffering=1 << 20) as f:
        for i in range(lines):
            browser, os_name, device = BROWSERS[i % len(BROWSERS)]
            sub: dict[str, object] = {
                "endpoint": f"https://fcm.googleapis.com/fcm/send/{run}-{i:08d}:"
                + secrets.token_urlsafe(100),
                "keys": {"p256dh": keys[i % len(keys)], "auth": b64url_encode(rng.randbytes(16))},
                "language": LANGUAGES[i % len(LANGUAGES)],
                "attributes": {"plan": ("free", "gold")[i % 2], "visits": i % 50},
                "d_wp_browser": browser,
                "d_wp_os": os_name,
                "d_wp_device": device,
            }
            if zone := ZONES[i % len(ZONES)]:
                sub["timezone"] = zone
            if i % 3 == 0:
                sub["last_engaged_at"] = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z"
            f.write(dumps(sub) + "\n")


def run_import(database_url: str, path: Path, batch_size: int | None) -> tuple[float, int, str]:
    """Create a partner, then time the import in a fresh process: (seconds, peak KiB,
    summary line)."""
    env = {**os.environ, "PUSHCAMP_DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "pushcamp"]
    partner = f"bench{secrets.token_hex(3)}"
    subprocess.run(
        [*cli, "partners", "create", partner],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    extra = ["--batch-size", str(batch_size)] if batch_size else []
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*cli, "subscribers", "import", partner, str(path), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    summary = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss, summary


def postgres_database(admin_url: str) -> tuple[str, str] | None:
    """Create a fresh database next to ``admin_url``: (its URL, its name), or None."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url).set(drivername="postgresql")
    name = f"pushcamp_bench_import_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(
            admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL skipped: {admin_url} unreachable ({str(exc).strip()[:80]})")
        return None
    return admin.set(database=name).render_as_string(hide_password=False), name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lines",
        default="100000,1000000",
        help="comma-separated file sizes (default 100000,1000000)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server to create the benchmark database on",
    )
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="passed to the command (default: the command's default)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.lines.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        keys = key_pool(KEY_POOL)
        files = {}
        for n in sizes:
            files[n] = Path(tmp) / f"subs-{n}.jsonl"
            generate(files[n], n, keys)
        print(
            f"generated {', '.join(f'{n:,}' for n in sizes)} lines "
            f"in {time.perf_counter() - started:.1f}s "
            f"({files[sizes[-1]].stat().st_size / 1e6:.0f} MB for the largest)"
        )
        pg_ok = not args.no_pg
        results = []
        for n in sizes:
            runs: list[tuple[str, str, str | None]] = [
                ("SQLite", f"sqlite:///{Path(tmp) / f'bench-{n}.db'}", None)
            ]
            pg = postgres_database(args.pg_url) if pg_ok else None
            pg_ok = pg is not None
            if pg:
                runs.append(("PostgreSQL", pg[0], pg[1]))
            for backend, url, pg_name in runs:
                try:
                    results.append((backend, n, *run_import(url, files[n], args.batch_size)))
                finally:
                    if pg_name:
                        drop_database(args.pg_url, pg_name)
                print(f"  {backend} {n:,}: {results[-1][-1]}", flush=True)
    print()
    print("| backend | lines | seconds | lines/s | peak RSS |")
    print("|---|---|---|---|---|")
    for backend, n, seconds, peak_kib, _ in results:
        print(
            f"| {backend} | {n:,} | {seconds:.1f} | {n / seconds:,.0f} | "
            f"{peak_kib / 1024:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
