"""The public surface of pushcamp.webpush: what a library user may import. Changing it
is a decision, so this list changes with it, on purpose."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pushcamp.webpush

PACKAGE = Path(pushcamp.webpush.__file__).parent

EXPECTED = {
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "DecryptionFailed",
    "Gone",
    "InvalidOptions",
    "InvalidSubscription",
    "InvalidVapid",
    "Outcome",
    "PayloadTooLarge",
    "PushMessage",
    "PushOptions",
    "PushResult",
    "AuthRejected",
    "Rejected",
    "RetryAfter",
    "Sent",
    "Subscription",
    "TooLarge",
    "Transient",
    "Vapid",
    "VerifiedToken",
    "WebPushError",
    "WebPushSender",
    "b64url_decode",
    "b64url_encode",
    "check_subject",
    "classify",
    "decrypt",
    "encrypt",
    "load_private_key",
    "origin_of",
    "verify_authorization",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(pushcamp.webpush.__all__) == EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in pushcamp.webpush.__all__:
        member = getattr(pushcamp.webpush, name)
        if callable(member):
            assert member.__doc__, f"{name} has no docstring"
            assert member.__module__.startswith("pushcamp.webpush"), name


def test_no_public_module_besides_the_package() -> None:
    public = [n for n in dir(pushcamp.webpush) if not n.startswith("_")]
    assert set(public) <= EXPECTED | {"annotations"}


def test_errors_are_the_librarys_own_family() -> None:
    from pushcamp.errors import PushcampError

    for name in (
        "PayloadTooLarge",
        "InvalidSubscription",
        "InvalidVapid",
        "InvalidOptions",
        "DecryptionFailed",
    ):
        assert issubclass(getattr(pushcamp.webpush, name), pushcamp.webpush.WebPushError)
    assert pushcamp.webpush.WebPushError.__bases__ == (Exception,)
    assert not issubclass(pushcamp.webpush.WebPushError, PushcampError)


def test_the_library_imports_nothing_of_the_application() -> None:
    """Statically: no module of the package imports from pushcamp outside it."""
    outside: list[str] = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom):  # relative: stays inside the package
                continue
            outside += [
                f"{path.name}: {n}"
                for n in names
                if (n == "pushcamp" or n.startswith("pushcamp."))
                and not (n == "pushcamp.webpush" or n.startswith("pushcamp.webpush."))
            ]
    assert outside == []


def test_importing_the_library_loads_nothing_else_of_pushcamp() -> None:
    """At run time, in a fresh interpreter: only ``pushcamp`` (its bare package) and
    ``pushcamp.webpush.*`` are loaded."""
    code = (
        "import sys, pushcamp.webpush; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('pushcamp')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pushcamp.webpush" in loaded
    assert [m for m in loaded if m != "pushcamp" and not m.startswith("pushcamp.webpush")] == []


def test_ships_a_py_typed_marker() -> None:
    """PEP 561: type checkers read the library's annotations. The wheel packages every
    file under pushcamp/ (pyproject.toml, [tool.hatch.build.targets.wheel])."""
    marker = PACKAGE / "py.typed"
    assert marker.is_file()
