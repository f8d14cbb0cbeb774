"""Run ``pushcamp serve`` as a real child process, for tests, benchmarks and demos."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

_LISTENING = re.compile(r"pushcamp listening on (http://\S+)")


class _ChildProcess:
    """What a pushcamp child process of the tests has in common: its ``proc``, the log
    file it writes to, its pid, and a stop that ends it for sure."""

    name = "pushcamp"
    stop_timeout = 15.0  # seconds a SIGTERM gets before SIGKILL

    proc: subprocess.Popen[str] | None
    _log: IO[str] | None

    @property
    def pid(self) -> int:
        """The process id (it must have been started)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc.pid

    def stop(self, kill: bool = False, timeout: float | None = None) -> int | None:
        """SIGTERM (a graceful stop) or SIGKILL; the exit code (None: never started)."""
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return None if self.proc is None else self.proc.returncode

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ServerProcess(_ChildProcess):
    """``pushcamp serve --port 0`` in a child process; ``url`` is known once it listens.

    Its stderr (the structured log) is copied to ``log_path`` so tests can read it; with
    ``on_log_line``, each line is also handed to that function (``pushcamp demo`` prints
    them).
    """

    name = "pushcamp serve"

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_log_line: Callable[[str], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.on_log_line = on_log_line
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.host = host
        self.port = port
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {**os.environ, **self.extra_env, "PUSHCAMP_DATABASE_URL": self.database_url}
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pushcamp",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log if self.on_log_line is None else subprocess.PIPE,
            text=True,
            env=env,
        )
        if self.on_log_line is not None:
            assert self.proc.stderr is not None
            threading.Thread(
                target=self._copy_log, args=(self.proc.stderr, self.on_log_line), daemon=True
            ).start()
        found: list[str] = []

        def watch(stream: IO[str]) -> None:
            for line in stream:
                if not found and (m := _LISTENING.search(line)):
                    found.append(m.group(1))

        assert self.proc.stdout is not None
        threading.Thread(target=watch, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pushcamp serve exited with {self.proc.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pushcamp serve did not listen within {timeout}s")
            time.sleep(0.05)
        self.url = found[0]
        return self

    def _copy_log(self, stream: IO[str], on_line: Callable[[str], None]) -> None:
        for line in stream:
            log = self._log
            if log is not None and not log.closed:
                log.write(line)
                log.flush()
            on_line(line.rstrip("\n"))

    def __enter__(self) -> ServerProcess:
        return self.start()


class WorkerProcess(_ChildProcess):
    """``pushcamp worker`` (the Celery runner) in a child process, started once Celery
    says it consumes. Its output (the structured log) goes to ``log_path``."""

    name = "pushcamp worker"
    stop_timeout = 60.0  # Celery's warm shutdown finishes the batch in hand

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.concurrency = concurrency
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        env = {**os.environ, **self.extra_env, "PUSHCAMP_DATABASE_URL": self.database_url}
        command = [sys.executable, "-m", "pushcamp", "worker"]
        if self.concurrency is not None:
            command += ["--concurrency", str(self.concurrency)]
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, text=True, env=env
        )
        ready = f"pushcamp-{self.proc.pid}@"
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                log.seek(start_at)
                if any(ready in line and " ready." in line for line in log):
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pushcamp worker exited with {self.proc.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise RuntimeError(f"pushcamp worker not ready within {timeout}s")
            time.sleep(0.1)

    def __enter__(self) -> WorkerProcess:
        return self.start()
