"""The simulator as a separate process, and a small client for its control API — for
benchmarks (so sender and simulator do not share a core) and for tests in any language
setting."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

from pushcamp.testing.simulator._state import Fault

_LISTENING = re.compile(r"pushcamp simulator listening on (http://\S+)")


class SimulatorClient:
    """Drive a running simulator over HTTP (stdlib only; blocking)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def subscribe(self, application_server_key: str | None = None) -> dict[str, Any]:
        """One new subscription, as ``PushSubscription.toJSON()``."""
        body = (
            {}
            if application_server_key is None
            else {"application_server_key": application_server_key}
        )
        result: dict[str, Any] = self._call("POST", "/subscriptions", body)
        return result

    def subscribe_many(
        self, count: int, application_server_key: str | None = None
    ) -> list[dict[str, Any]]:
        """``count`` new subscriptions (bound to ``application_server_key`` when given)."""
        body: dict[str, Any] = {"count": count}
        if application_server_key is not None:
            body["application_server_key"] = application_server_key
        subs: list[dict[str, Any]] = self._call("POST", "/subscriptions", body)["subscriptions"]
        return subs

    def messages(self, subscription_id: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._call(
            "GET", f"/subscriptions/{subscription_id}/messages"
        )["messages"]
        return messages

    def inject(self, subscription_id: str, fault: Fault, times: int = 1) -> None:
        self._call(
            "POST", f"/subscriptions/{subscription_id}/faults", {**fault.to_json(), "times": times}
        )

    def add_fault_rate(self, fault: Fault, rate: float) -> None:
        self._call("POST", "/faults", {**fault.to_json(), "rate": rate})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def unsubscribe(self, subscription_id: str) -> None:
        self._call("DELETE", f"/subscriptions/{subscription_id}")

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/stats")
        return stats

    def reset(self) -> None:
        self._call("POST", "/reset")


def subscription_id(endpoint: str) -> str:
    """The simulator's id of a subscription, from its endpoint URL."""
    return endpoint.rstrip("/").rsplit("/", 1)[-1]


class SimulatorProcess:
    """``python -m pushcamp.testing.simulator`` in a child process; ``url`` and ``client``
    are ready once it listens. Use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        decrypt: bool = True,
        verify_vapid: bool = True,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "pushcamp.testing.simulator",
            "--host",
            host,
            "--port",
            str(port),
        ]
        if not decrypt:
            self.args.append("--no-decrypt")
        if not verify_vapid:
            self.args.append("--no-verify-vapid")
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> SimulatorProcess:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            match = _LISTENING.search(line)
            if match:
                self.url = match.group(1)
                return self
        self.stop()
        raise RuntimeError("the simulator process did not start listening")

    @property
    def client(self) -> SimulatorClient:
        return SimulatorClient(self.url)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
