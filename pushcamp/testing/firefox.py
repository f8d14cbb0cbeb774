"""A real headless Firefox whose push service is the simulator, for tests and demos.

Firefox's push client talks to whatever server its profile names, over Mozilla's
WebSocket push protocol, which the simulator serves (docs/simulator.md). So a fresh
profile with four preferences makes a Firefox that subscribes, receives, decrypts and
shows pushes with nothing outside this machine:

* ``dom.push.serverURL``: the simulator's ``ws://127.0.0.1:PORT/``;
* ``dom.push.testing.allowInsecureServerURL``: true (plain ``ws://``);
* ``permissions.default.desktop-notification``: 1, notifications allowed without asking
  (a headless browser has nobody to click "Allow");
* ``alerts.useSystemBackend``: false, Firefox draws notifications itself (there is no
  desktop to show them when headless).

Firefox refuses ``subscribe()`` until its push connection has said hello, a few seconds
after start: open the simulator's gate page first (``PushServiceSimulator.gate_url``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

FIREFOX_NAMES = ("firefox-esr", "firefox")


def find_firefox() -> str | None:
    """The Firefox executable on PATH (Debian's ``firefox-esr`` first), or None."""
    for name in FIREFOX_NAMES:
        if path := shutil.which(name):
            return path
    return None


def push_preferences(push_server_url: str) -> dict[str, object]:
    """The preferences that point Firefox's push client at ``push_server_url``."""
    return {
        "dom.push.serverURL": push_server_url,
        "dom.push.testing.allowInsecureServerURL": True,
        "permissions.default.desktop-notification": 1,
        "alerts.useSystemBackend": False,
        # Quiet and quick: no first-run pages, no update or telemetry traffic.
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "datareporting.policy.dataSubmissionEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "app.update.enabled": False,
        "browser.aboutwelcome.enabled": False,
        # A restart opens only the URL it is given: a restored tab of the last run would
        # be a second page reporting (and taking the actions meant for the new one).
        "browser.startup.page": 0,
        "browser.sessionstore.resume_from_crash": False,
        "browser.sessionstore.resume_session_once": False,
        # Should a test attach WebDriver BiDi (for a screenshot), leave these preferences
        # as they are: its "recommended" set would change the browser under test.
        "remote.prefs.recommended": False,
    }


def _pref_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    import json

    return json.dumps(str(value))


def write_profile(directory: Path, preferences: Mapping[str, object]) -> Path:
    """A fresh profile in ``directory`` (created first: Firefox hangs on a missing one)
    with ``preferences`` in its ``user.js``."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f'user_pref("{name}", {_pref_value(v)});' for name, v in preferences.items()]
    (directory / "user.js").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


class HeadlessFirefox:
    """``firefox --headless --profile DIR --no-remote URL`` in a process group of its own,
    with a fresh profile whose push server is ``push_server_url``.

    Use as a context manager; :meth:`open` starts it on a URL. Its output goes to
    ``log_path`` (or is discarded). The profile lives in ``profile_dir``, or in a
    temporary directory removed at :meth:`close`.
    """

    def __init__(
        self,
        push_server_url: str,
        *,
        executable: str | None = None,
        profile_dir: Path | None = None,
        log_path: Path | None = None,
        width: int = 900,
        height: int = 1000,
    ) -> None:
        found = executable or find_firefox()
        if found is None:
            raise FileNotFoundError(
                "Firefox is not installed (Debian: apt-get install firefox-esr)"
            )
        self.executable = found
        self._own_profile = profile_dir is None
        self.profile = profile_dir or Path(tempfile.mkdtemp(prefix="pushcamp-firefox-"))
        write_profile(self.profile, push_preferences(push_server_url))
        self.log_path = log_path
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "MOZ_HEADLESS": "1"}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def open(self, url: str, *extra_args: str) -> HeadlessFirefox:
        """Start Firefox on ``url`` (``extra_args`` go on its command line)."""
        if self.proc is not None:
            raise RuntimeError("this Firefox is already running")
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-remote",
                "--profile",
                str(self.profile),
                f"--window-size={self.size[0]},{self.size[1]}",
                *extra_args,
                url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,  # its content processes go with it at stop()
        )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop Firefox and its content processes (its own process group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Content processes left behind by a killed parent.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        if self._own_profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> HeadlessFirefox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
