"""docs/deploy.md exercised: its environment file and systemd units are read from the page
and their commands run as written (without systemd), so the documented layout is the one
tested.

Invariants: four ``pushcamp db upgrade`` started at the same moment on a fresh database
all succeed and leave the schema at head once; two API processes and two workers started
from the units' ``ExecStart`` lines send a launch to everyone exactly once; every setting
the environment file names is one pushcamp reads."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import text

from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import fresh_database
from tests.integration.scaled.test_celery_runner import OwnRedis, _free_port, _wait_ended
from tests.integration.scaled.test_scale_out import _pushes, _records, _subscribe

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[3] / "docs" / "deploy.md"
BINARY = "/opt/pushcamp/venv/bin/pushcamp"
PARTNER = "scaled1"  # what _subscribe stores for
# The values that name the operator's machines: replaced by the test's own.
SITE_SPECIFIC = {
    "PUSHCAMP_DATABASE_URL",
    "PUSHCAMP_BROKER_URL",
    "PUSHCAMP_REDIS_URL",
    "PUSHCAMP_PUBLIC_URL",
}


def _block(marker: str) -> str:
    """The fenced block following ``<!-- deploy-test: marker -->`` in docs/deploy.md."""
    page = PAGE.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- deploy-test: {re.escape(marker)} -->\n```\w*\n(.*?)```", page, re.DOTALL
    )
    assert found, f"docs/deploy.md has no block marked {marker!r}"
    return found.group(1)


def _environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _block("environment").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def _exec_start(unit: str) -> list[str]:
    body = _block(f"unit {unit}")
    assert "EnvironmentFile=/etc/pushcamp/pushcamp.env" in body
    [line] = [x for x in body.splitlines() if x.startswith("ExecStart=")]
    words = shlex.split(line.removeprefix("ExecStart="))
    assert words[0] == BINARY, words
    return [sys.executable, "-m", "pushcamp", *words[1:]]


def test_the_environment_file_names_only_real_settings() -> None:
    env = _environment()
    fields = {f"PUSHCAMP_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert set(env) >= SITE_SPECIFIC
    settings = Settings.model_validate(
        {k.removeprefix("PUSHCAMP_").lower(): v for k, v in env.items()}
    )
    assert settings.broker_url and not settings.delivery_in_process


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, "pushcamp_deploy") as url:
        yield url


def _process_env(database_url: str, broker: OwnRedis, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PUSHCAMP_")}
    return {
        **inherited,
        **_environment(),
        "PUSHCAMP_DATABASE_URL": database_url,
        "PUSHCAMP_BROKER_URL": f"redis://127.0.0.1:{broker.port}/1",
        "PUSHCAMP_REDIS_URL": f"redis://127.0.0.1:{broker.port}/0",
        "PUSHCAMP_PUBLIC_URL": "https://push.pushcamp.test",
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",  # the simulator
        **extra,
    }


def test_four_upgrades_started_at_once_all_succeed(database_url: str, tmp_path: Path) -> None:
    command = _exec_start("pushcamp-migrate.service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHCAMP_")}
    env["PUSHCAMP_DATABASE_URL"] = database_url
    # Python and the imports take a while: the processes start together and reach the
    # migration within milliseconds of each other.
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0] * 4, results
    db = Database(Settings(database_url=database_url))
    try:
        with db.read() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            tables = conn.execute(text("SELECT count(*) FROM partners")).scalar_one()
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option(
            "script_location",
            str(Path(__file__).resolve().parents[3] / "pushcamp/store/migrations"),
        )
        head = ScriptDirectory.from_config(config).get_current_head()
        assert [v[0] for v in versions] == [head]
        assert tables == 0
    finally:
        db.dispose()


def _start_api(
    command: list[str], env: dict[str, str], log: IO[str]
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    found: list[str] = []

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not found and (m := re.search(r"pushcamp listening on (http://\S+)", line)):
                found.append(m.group(1))

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.monotonic() + 60
    while not found:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        assert time.monotonic() < deadline, "serve did not listen"
        time.sleep(0.05)
    return proc, found[0]


def _start_worker(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text(encoding="utf-8", errors="replace"):
        assert proc.poll() is None, f"worker exited with {proc.returncode}"
        assert time.monotonic() < deadline, "worker not ready"
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_the_documented_layout_sends_a_launch(database_url: str, tmp_path: Path) -> None:
    from pushcamp.services import partners, tokens
    from tests.integration.launch.conftest import launch_body

    audience = 1500
    broker = OwnRedis(tmp_path)
    broker.start()
    with ExitStack() as stack:
        stack.callback(broker.stop)
        env = _process_env(database_url, broker, PUSHCAMP_REDIS_KEY_PREFIX="deploy-test:")
        migrate = subprocess.run(
            _exec_start("pushcamp-migrate.service"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr
        db = Database(Settings(database_url=database_url))
        stack.callback(db.dispose)
        partners.create_partner(db, PARTNER, "deploy", 10_000, 10_000)
        token = tokens.create_token(db, PARTNER)
        sim = stack.enter_context(PushServiceSimulator(seed=31))
        subs = _subscribe(db, sim, audience)

        urls = []
        api_log = stack.enter_context(open(tmp_path / "api.log", "w", encoding="utf-8"))
        for _ in range(2):
            command = [
                w.replace("%i", str(_free_port())) for w in _exec_start("pushcamp-api@.service")
            ]
            proc, url = _start_api(command, env, api_log)
            stack.callback(_stop, proc)
            urls.append(url)
        for i in range(2):
            worker = _start_worker(
                _exec_start("pushcamp-worker@.service"), env, tmp_path / f"w{i}.log"
            )
            stack.callback(_stop, worker)

        with (
            httpx.Client(base_url=urls[0], headers={"Authorization": token}) as api,
            httpx.Client(base_url=urls[1], headers={"Authorization": token}) as other,
        ):
            assert other.get("/readyz").json()["checks"] == {
                "database": "ok",
                "redis": "ok",
                "broker": "ok",
            }
            created = api.post(
                "/v1/single",
                json={
                    "partner_id": PARTNER,
                    "title": "deploy",
                    "language": "all_ALL",
                    "is_all": True,
                },
            )
            assert created.status_code == 201, created.text
            campaign_id = int(created.json()["campaign_id"])
            launched = other.post(f"/v1/single/{campaign_id}", json=launch_body(PARTNER))
            assert launched.status_code == 200, launched.text
            launch = _wait_ended(api, campaign_id)
        assert launch["status"] == "Sent" and launch["sent"] == audience, launch
        records, distinct, states = _records(db, launch["launch_id"])
        assert records == distinct == audience and states == {"sent"}
        assert _pushes(sim, subs) == [1] * audience
        # Decrypted by the simulator (http_ece): the payload is the launch's.
        assert json.loads(sim.messages(subs[0])[0].text)["title"] == launch_body(PARTNER)["title"]
