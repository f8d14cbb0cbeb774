"""The layer rules of the architecture, checked by reading every module's imports (its
syntax tree, so that an import inside a function or under ``TYPE_CHECKING`` counts too).

- ``domain/`` is pure rules: no web framework, no SQL, no HTTP client, and none of the
  layers that do I/O (``webpush``, ``store``, ``api``, ``services``, ``delivery``).
- ``webpush/`` is a library of its own: it imports nothing of pushcamp outside itself.
- Nothing below ``api/`` imports ``pushcamp.api``.
- ``panel/`` and ``api/routes/`` only shape what the service layer returns: no SQL, and
  the panel never reaches into ``store/`` or ``delivery/`` (docs: ARCHITECTURE, "Read
  models").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pushcamp

PACKAGE = Path(pushcamp.__file__).parent

DOMAIN_FORBIDDEN = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "aiohttp",
    "httpx",
    "pushcamp.webpush",
    "pushcamp.store",
    "pushcamp.api",
    "pushcamp.services",
    "pushcamp.delivery",
)
# The modules and packages below the HTTP layer (server.py and cli.py sit above it).
BELOW_API = (
    "domain",
    "webpush",
    "store",
    "services",
    "delivery",
    "encoding.py",
    "errors.py",
    "timeutil.py",
    "metrics.py",
    "settings.py",
    "logs.py",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file (whose module name
    is ``name``, by default found from its place in the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name or _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # "from pushcamp import webpush" names the package
                yield node.lineno, f"{module}.{alias.name}"


def _files(*names: str) -> list[Path]:
    found: list[Path] = []
    for name in names:
        target = PACKAGE / name
        if target.is_dir():
            found.extend(sorted(target.rglob("*.py")))
        elif target.exists():
            found.append(target)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations(files: list[Path], forbidden: object) -> list[str]:
    out = []
    for path in files:
        for line, module in _imports(path):
            if callable(forbidden) and forbidden(module):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return out


def test_the_checker_sees_relative_and_nested_imports(tmp_path: Path) -> None:
    """The analysis itself: a relative import and one inside a function both count."""
    probe = tmp_path / "probe.py"
    source = "from ..webpush import b64url_encode\n\ndef f():\n    import sqlalchemy\n"
    probe.write_text(source, encoding="utf-8")
    found = {m: line for line, m in _imports(probe, "pushcamp.domain.probe")}
    assert "pushcamp.webpush" in found
    assert found["sqlalchemy"] == 4


def test_domain_is_pure() -> None:
    files = _files("domain")
    assert len(files) > 5
    problems = _violations(files, lambda m: any(_within(m, banned) for banned in DOMAIN_FORBIDDEN))
    assert problems == []


def test_webpush_is_a_library_of_its_own() -> None:
    files = _files("webpush")
    assert len(files) > 5
    problems = _violations(
        files, lambda m: _within(m, "pushcamp") and not _within(m, "pushcamp.webpush")
    )
    assert problems == []


@pytest.mark.parametrize("layer", BELOW_API)
def test_nothing_below_the_api_imports_it(layer: str) -> None:
    files = _files(layer)
    assert files, f"{layer} not found"
    assert _violations(files, lambda m: _within(m, "pushcamp.api")) == []


PANEL_FORBIDDEN = ("sqlalchemy", "alembic", "pushcamp.store", "pushcamp.delivery")


def test_the_panel_goes_through_the_service_layer() -> None:
    files = _files("panel")
    assert len(files) > 3
    problems = _violations(files, lambda m: any(_within(m, banned) for banned in PANEL_FORBIDDEN))
    assert problems == []


def test_the_api_routes_hold_no_sql() -> None:
    files = _files("api/routes")
    assert len(files) > 3
    problems = _violations(
        files, lambda m: any(_within(m, banned) for banned in ("sqlalchemy", "alembic"))
    )
    assert problems == []


def test_the_domain_payload_limit_is_the_protocols() -> None:
    """The domain's copy of the Web Push payload limit cannot drift from the library's."""
    from pushcamp.domain import launches
    from pushcamp.webpush import MAX_PAYLOAD_SIZE

    assert launches.MAX_PAYLOAD_SIZE == MAX_PAYLOAD_SIZE == 3993


@pytest.mark.parametrize(
    "text", ["", "AA", "AQAB", "AQAB==", "+/+/", "-_-_", " AQAB ", "A", "a!b", "é"]
)
def test_the_shared_base64url_helpers_are_the_protocols(text: str) -> None:
    """pushcamp.encoding and the protocol library's own copy agree, errors included."""
    from pushcamp import encoding, webpush

    def outcome(decode: object) -> object:
        assert callable(decode)
        try:
            return decode(text)
        except ValueError:
            return ValueError

    assert outcome(encoding.b64url_decode) == outcome(webpush.b64url_decode)
    raw = text.encode()
    assert encoding.b64url_encode(raw) == webpush.b64url_encode(raw)
