"""A screenshot of a running Firefox over WebDriver BiDi (the ``websockets`` client).

Only the documentation's picture uses it: everything the end-to-end test asserts comes
from what the page and the worker reported with ``fetch``. Firefox's own
``--screenshot`` takes its picture at the load event, before the SDK has finished, so it
would show a page still loading.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

_LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")

ARGS = ("--remote-debugging-port", "0")  # give these to HeadlessFirefox.open()


def bidi_url(log_path: Path, timeout: float = 30.0) -> str:
    """Where the Firefox started with :data:`ARGS` listens (it says so in its output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and (found := _LISTENING.findall(log_path.read_bytes())):
            return found[-1].decode()
        time.sleep(0.1)
    raise AssertionError("Firefox did not start WebDriver BiDi")


def screenshot(url: str, path: Path) -> Path:
    """A PNG of the first tab's whole page."""
    with connect(url + "/session", max_size=64 * 1024 * 1024) as ws:
        counter = 0

        def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
            nonlocal counter
            counter += 1
            ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message: dict[str, Any] = json.loads(ws.recv(timeout=30))
                if message.get("id") == counter:
                    assert message.get("type") == "success", message
                    result: dict[str, Any] = message["result"]
                    return result

        call("session.new", {"capabilities": {}})
        try:
            context = call("browsingContext.getTree", {"maxDepth": 0})["contexts"][0]["context"]
            shot = call(
                "browsingContext.captureScreenshot", {"context": context, "origin": "document"}
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        finally:
            call("session.end", {})
    return path
