"""End-to-end fixtures: a real headless Firefox (Debian's ``firefox-esr``) whose push
service is pushcamp's simulator, speaking Mozilla's WebSocket push protocol.

Firefox comes from the system (``./test`` installs it with apt-get). Without it these
tests are skipped with the reason, except under CI (``CI=true``), where a missing browser
fails the run instead of passing it silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushcamp.testing.firefox import HeadlessFirefox, find_firefox
from pushcamp.testing.simulator import PushServiceSimulator


def firefox_executable() -> str:
    found = find_firefox()
    if found is not None:
        return found
    reason = "firefox-esr is not installed (./test installs it with apt-get when run as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}: the end-to-end test cannot run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def push_service() -> Iterator[PushServiceSimulator]:
    """A simulator of its own: the browser's push service for one test."""
    with PushServiceSimulator() as simulator:
        yield simulator


@pytest.fixture
def firefox(push_service: PushServiceSimulator, tmp_path: Path) -> Iterator[HeadlessFirefox]:
    """A headless Firefox (not started yet) with a fresh profile pointed at
    ``push_service``; its output is kept in the test's directory."""
    browser = HeadlessFirefox(
        push_service.push_server_url,
        executable=firefox_executable(),
        profile_dir=tmp_path / "profile",
        log_path=tmp_path / "firefox.log",
    )
    try:
        yield browser
    finally:
        browser.close()
