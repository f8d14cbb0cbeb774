"""The desktop's notification server, as Chromium on Linux talks to it: a private D-Bus
session bus (dbus-daemon) and a server for the freedesktop Desktop Notifications interface
(``org.freedesktop.Notifications``) on it, written with jeepney.

Chromium shows a web notification by calling ``Notify`` on this interface and learns that
the user clicked or dismissed it from the server's ``ActionInvoked`` and
``NotificationClosed`` signals: the same messages a GNOME or KDE desktop sends when a
person clicks. So ``click()`` and ``dismiss()`` make Chromium dispatch real, trusted
``notificationclick`` and ``notificationclose`` events to the service worker, with the
window interaction a click grants (``clients.openWindow``, ``WindowClient.focus``).

Chromium forwards these only for a regular profile: use a persistent browser context,
not an off-the-record one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.threading import DBusConnection, ReceiveStopped, open_dbus_connection

INTERFACE = "org.freedesktop.Notifications"
OBJECT = DBusAddress("/org/freedesktop/Notifications", interface=INTERFACE)
CAPABILITIES = ["actions", "body", "body-hyperlinks", "body-markup", "icon-static", "persistence"]
DISMISSED_BY_USER = 2  # NotificationClosed reasons in the specification: 2 is "dismissed"


def find_dbus_daemon() -> str | None:
    return shutil.which("dbus-daemon")


@dataclass(frozen=True)
class Shown:
    """One ``Notify`` call: what Chromium asked the desktop to show."""

    id: int
    title: str
    body: str  # Chromium puts the origin first, then a blank line, then the body
    actions: tuple[str, ...]  # key, label, key, label, ...
    hints: dict[str, object] = field(default_factory=dict)  # D-Bus variants, unwrapped
    expire_timeout: int = -1  # ms; 0 never expires, -1 the server decides


class DesktopNotifications:
    """A session bus of its own and a notification server that records what it is asked
    to show. ``address`` goes into Chromium's ``DBUS_SESSION_BUS_ADDRESS``."""

    def __init__(self, executable: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="pushcamp-dbus-"))
        self._daemon = subprocess.Popen(
            [
                executable,
                "--session",
                "--nofork",
                "--nopidfile",
                "--print-address=1",
                f"--address=unix:path={self._dir / 'bus'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().strip()
        if not self.address:
            self.close()
            raise RuntimeError("dbus-daemon did not start")
        self._cond = threading.Condition()
        self._shown: list[Shown] = []
        self._closed_by_browser: list[int] = []
        self._next_id = 0
        self._conn: DBusConnection = open_dbus_connection(self.address)
        self._own_name()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _own_name(self) -> None:
        request = message_bus.RequestName(INTERFACE)
        serial = 1000
        self._conn.send(request, serial=serial)
        while True:
            reply = self._conn.receive(timeout=10)
            if reply.header.fields.get(HeaderFields.reply_serial) == serial:
                if reply.header.message_type == MessageType.error or reply.body != (1,):
                    raise RuntimeError(f"could not own {INTERFACE}: {reply.body}")
                return

    # -- the server (its own thread: it only records, it asserts nothing) ------------------

    def _serve(self) -> None:
        while True:
            try:
                msg = self._conn.receive()
            except (ReceiveStopped, OSError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            if member == "GetCapabilities":
                self._conn.send(new_method_return(msg, "as", (CAPABILITIES,)))
            elif member == "GetServerInformation":
                self._conn.send(new_method_return(msg, "ssss", ("pushcamp-tests", "", "1", "1.2")))
            elif member == "Notify":
                _app, replaces, _icon, title, body, actions, hints, timeout = msg.body
                with self._cond:
                    if replaces:
                        notification_id = replaces
                    else:
                        self._next_id += 1
                        notification_id = self._next_id
                    self._shown.append(
                        Shown(
                            notification_id,
                            title,
                            body,
                            tuple(actions),
                            {key: value for key, (_sig, value) in hints.items()},
                            timeout,
                        )
                    )
                    self._cond.notify_all()
                self._conn.send(new_method_return(msg, "u", (notification_id,)))
            elif member == "CloseNotification":
                with self._cond:
                    self._closed_by_browser.append(msg.body[0])
                    self._cond.notify_all()
                self._conn.send(new_method_return(msg, "", ()))
            else:
                self._conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))

    # -- what tests call ------------------------------------------------------------------

    def shown(self) -> list[Shown]:
        with self._cond:
            return list(self._shown)

    def wait_shown(self, title: str, timeout: float = 15.0) -> Shown:
        """The notification titled ``title``, once Chromium has asked for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for shown in self._shown:
                    if shown.title == title:
                        return shown
                left = deadline - time.monotonic()
                if left <= 0:
                    titles = [s.title for s in self._shown]
                    raise AssertionError(f"no notification {title!r} was shown (saw {titles})")
                self._cond.wait(left)

    def closed_by_browser(self) -> list[int]:
        """Ids Chromium asked the desktop to take away (``notification.close()``)."""
        with self._cond:
            return list(self._closed_by_browser)

    def click(self, shown: Shown) -> None:
        """The user clicks the notification's body (its ``default`` action)."""
        assert "default" in shown.actions, shown
        self._conn.send(new_signal(OBJECT, "ActionInvoked", "us", (shown.id, "default")))

    def click_action(self, shown: Shown, key: str) -> None:
        """The user clicks the button ``key`` (one of the keys in ``shown.actions``)."""
        assert key in shown.actions[::2], shown
        self._conn.send(new_signal(OBJECT, "ActionInvoked", "us", (shown.id, key)))

    def dismiss(self, shown: Shown) -> None:
        """The user closes the notification without clicking it."""
        self._conn.send(
            new_signal(OBJECT, "NotificationClosed", "uu", (shown.id, DISMISSED_BY_USER))
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.interrupt()
            self._conn.close()
        if self._daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._daemon.pid, signal.SIGTERM)
            try:
                self._daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._daemon.pid, signal.SIGKILL)
                self._daemon.wait()
        if self._daemon.stdout is not None:
            self._daemon.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)
