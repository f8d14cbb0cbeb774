"""A small Chrome DevTools Protocol client: one browser process, one websocket, flattened
sessions for pages and workers. Synchronous on purpose (a reader thread files answers and
events), so tests stay plain pytest functions."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

Event = dict[str, Any]

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # containers have no user namespaces for the sandbox
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)


class CDPError(RuntimeError):
    """The browser answered a command with an error."""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class Browser:
    """A headless Chromium with a fresh profile, driven over its DevTools websocket."""

    def __init__(self, executable: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="pushcamp-chromium-"))
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with all its children
        )
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._closed = False
        try:
            # Entered by hand: the connection outlives this call (closed in close()), and
            # websockets warns about a connection used without entering it.
            self.ws = connect(self._websocket_url(), max_size=None, open_timeout=10).__enter__()
        except BaseException:
            self.close()
            raise
        threading.Thread(target=self._read, daemon=True).start()

    def _websocket_url(self, timeout: float = 30.0) -> str:
        # Chromium writes the port it chose and the browser target's path once it listens.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            try:
                port, path = port_file.read_text().split("\n")[:2]
                if port and path:
                    return f"ws://127.0.0.1:{port}{path}"
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"chromium wrote no DevToolsActivePort within {timeout}s")

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                with self._cond:
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self._events.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Run one command and return its result; a protocol error raises CDPError."""
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        with self._cond:
            while command_id not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError(f"{method}: no answer within {timeout}s")
                self._cond.wait(left)
            answer = self._answers.pop(command_id)
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error'].get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def events(self, method: str | None = None, session: str | None = None) -> list[Event]:
        with self._cond:
            return [
                e
                for e in self._events
                if (method is None or e["method"] == method)
                and (session is None or e.get("sessionId") == session)
            ]

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Event], bool] = lambda _e: True,
        timeout: float = 15.0,
    ) -> Event:
        """The first event (already received or yet to come) of ``method`` that matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self._events:
                    if e["method"] == method and predicate(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError(f"no {method} event within {timeout}s")
                self._cond.wait(left)

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, target, session["sessionId"])

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            with contextlib.suppress(CDPError, TimeoutError, ConnectionClosed):
                self.send("Browser.close", timeout=5)
            ws.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab, with what the page printed or threw collected from the start."""

    def __init__(self, browser: Browser, target_id: str, session: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session = session
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str, timeout: float = 15.0) -> None:
        seen = len(self.browser.events("Page.loadEventFired", self.session))
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while len(self.browser.events("Page.loadEventFired", self.session)) <= seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading within {timeout}s")
            time.sleep(0.05)

    def evaluate(self, expression: str, user_gesture: bool = False, timeout: float = 15.0) -> Any:
        """Evaluate ``expression`` (awaiting a promise) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
                "userGesture": user_gesture,
                "timeout": int(timeout * 1000),
            },
            timeout=timeout + 1,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"page threw: {text}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll ``expression`` in the page until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} stayed falsy for {timeout}s")
            time.sleep(0.1)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries, as text."""
        found: list[str] = []
        for e in self.browser.events("Runtime.consoleAPICalled", self.session):
            if e["params"]["type"] in ("error", "assert"):
                args = e["params"].get("args", [])
                found.append(
                    "console: "
                    + " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                )
        for e in self.browser.events("Runtime.exceptionThrown", self.session):
            details = e["params"]["exceptionDetails"]
            found.append(
                "exception: "
                + str(details.get("exception", {}).get("description") or details.get("text"))
            )
        for e in self.browser.events("Log.entryAdded", self.session):
            entry = e["params"]["entry"]
            if entry["level"] == "error":
                where = entry.get("url", "")
                found.append(f"log ({entry.get('source')}): {entry.get('text')} {where}")
        return found

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target_id})
