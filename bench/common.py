"""What several bench scripts need: the real command line as a process, and a process's
peak memory and CPU time read from /proc (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``pushcamp ARGS`` with ``env``; its stdout, or exit with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "pushcamp", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"pushcamp {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
