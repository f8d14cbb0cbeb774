"""``pushcamp demo``, run as a person would run it (a real child process): server,
simulator, simulated subscribers, a launch with its statistics, and with ``--browser`` a
real headless Firefox that receives the notification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import firefox_executable


def test_demo_with_a_real_firefox(tmp_path: Path) -> None:
    firefox_executable()  # skipped (failed under CI) without Firefox
    env = {**os.environ, "PUSHCAMP_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("PUSHCAMP_LOG_JSON", None)
    env.pop("PUSHCAMP_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pushcamp", "demo", "--browser", "--exit", "--subscribers", "250"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Firefox subscribed" in output
    assert "Firefox showed the notification (ack code 100): Summer sale" in output
    assert "Everything 20% off" in output
    # 250 simulated subscribers and the Firefox one: all sent, the browser's delivered.
    assert "│ targeted" in output and "251 │" in output
    assert "│ delivered (reported by a service worker) │     1 │" in output
    assert "/panel/login" in output and "Token: pc_" in output
    # Not a terminal: the demo's and the server's logs are JSON lines.
    # Each log event is one JSON object at the start of its line; the progress display,
    # written by another thread to the same stream, can end up behind one on that line
    # (seen once in CI), so each line's first object is read, not the whole line.
    decoder = json.JSONDecoder()
    events = [decoder.raw_decode(line)[0] for line in output.splitlines() if line.startswith("{")]
    names = {e.get("event") for e in events}
    assert {"demo.partner_created", "demo.subscribers_imported", "demo.launched"} <= names
    assert "launch_sent" in names  # from the server process
    imported = next(e for e in events if e["event"] == "demo.subscribers_imported")
    assert imported["count"] == 250
