"""Log lines: JSON when stderr is not a terminal or when PUSHCAMP_LOG_JSON=true, readable
lines (structlog's console renderer) on a terminal or with PUSHCAMP_LOG_JSON=false. Each
case runs a real process whose stderr is a pipe or a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

SCRIPT = (
    "from pushcamp import logs; from pushcamp.settings import Settings;"
    "logs.configure('INFO', Settings().log_json);"
    "logs.get_logger().info('hello', n=1)"
)


def run(log_json: str | None, terminal: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PUSHCAMP_LOG_JSON"}
    if log_json is not None:
        env["PUSHCAMP_LOG_JSON"] = log_json
    if not terminal:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stderr
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT], stderr=follower, env=env, timeout=60, check=True
        )
        assert proc.returncode == 0
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal's other side is closed: all read
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


def is_json_line(text: str) -> bool:
    line = text.strip().splitlines()[-1]
    try:
        return json.loads(line).get("event") == "hello"
    except ValueError:
        return False


@pytest.mark.parametrize(
    ("log_json", "terminal", "json_expected"),
    [
        (None, False, True),  # a pipe or a file: JSON, as before
        (None, True, False),  # a person at a terminal: readable lines
        ("true", True, True),  # asked for JSON: JSON even on a terminal
        ("false", False, False),  # asked for readable lines: so, even in a pipe
    ],
)
def test_log_format(log_json: str | None, terminal: bool, json_expected: bool) -> None:
    text = run(log_json, terminal)
    assert "hello" in text
    assert is_json_line(text) is json_expected, text
