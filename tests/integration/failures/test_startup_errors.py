"""``pushcamp serve`` on a database it cannot use exits non-zero at once with one clear
line on stderr — no traceback, and no server that starts and then answers 424 to every
write: a SQLite path in a directory that does not exist, a read-only file or directory, a
full disk (a real 4 MiB tmpfs when this machine lets the test mount one, and a file-size
limit, which makes writes fail the same way, everywhere), a PostgreSQL server that
refuses connections or only allows reading."""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pushcamp.settings import Settings
from pushcamp.store import Database
from tests.conftest import BACKEND, PG_URL, fresh_database

EXIT_DATABASE = 5  # the CLI's code for a database it cannot use (README)


def serve(
    url: str,
    cwd: Path,
    *,
    prefix: list[str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PUSHCAMP_DATABASE_URL": url}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "pushcamp", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        preexec_fn=preexec,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *reasons: str) -> None:
    """Exit 5, nothing on stdout (it never listened), one line on stderr naming the
    database and one of ``reasons``."""
    assert result.returncode == EXIT_DATABASE, result.stderr
    assert "listening" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: cannot use the database "), lines[0]
    assert any(reason in lines[0] for reason in reasons), lines[0]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private (0700) tree, so that another user can be
    given a file in it."""
    path = Path(tempfile.mkdtemp(prefix="pushcamp-startup-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in (path, *path.rglob("*")):
            with contextlib.suppress(OSError):
                p.chmod(0o700 if p.is_dir() else 0o600)
        shutil.rmtree(path, ignore_errors=True)


def migrated(path: Path) -> str:
    url = f"sqlite:///{path}"
    db = Database(Settings(database_url=url))
    db.migrate()
    db.dispose()
    return url


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    result = serve(f"sqlite:///{tmp_path / 'no-such-dir' / 'pushcamp.db'}", tmp_path)
    assert_refused(result, "unable to open database file")
    assert not (tmp_path / "no-such-dir").exists()


@pytest.mark.parametrize("directory_too", [False, True], ids=["file", "file-and-directory"])
def test_a_read_only_file(shared_dir: Path, directory_too: bool) -> None:
    """chmod 0400 on an existing database whose schema is current (so nothing at start-up
    would otherwise write), and 0500 on its directory too. root ignores permissions, so
    as root the server runs as ``nobody`` (through util-linux's ``setpriv``), the owner
    of the file."""
    data = shared_dir / "data"
    data.mkdir()
    url = migrated(data / "pushcamp.db")
    prefix = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root, needs setpriv (util-linux) to run the server as nobody")
        nobody = pwd.getpwnam("nobody")
        prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
        prefix.append("--clear-groups")
        for p in (data, *data.iterdir()):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    (data / "pushcamp.db").chmod(0o400)
    if directory_too:
        data.chmod(0o500)
    result = serve(url, shared_dir, prefix=prefix)
    assert_refused(result, "readonly database", "unable to open database file")


def _no_core_and_small_files(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # Writes past the limit fail with EFBIG instead of killing the process (SIGXFSZ).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("fresh", [True, False], ids=["new-database", "existing-database"])
def test_files_that_cannot_grow(tmp_path: Path, fresh: bool) -> None:
    """RLIMIT_FSIZE in the child: no file may grow past 16 KiB, as on a full disk. A new
    database cannot take its schema; an existing one cannot take the start-up write."""
    path = tmp_path / "pushcamp.db"
    url = f"sqlite:///{path}" if fresh else migrated(path)
    result = serve(url, tmp_path, preexec=_no_core_and_small_files(16 * 1024))
    assert_refused(result, "disk is full", "disk I/O error")


@contextlib.contextmanager
def small_tmpfs(directory: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_files_that_cannot_grow covers it")
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(directory)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(directory: Path) -> None:
    # Unbuffered, so that the write which meets the full disk is the one that fails
    # (a buffered close would fail again, outside the suppress).
    with contextlib.suppress(OSError), open(directory / "filler", "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)


@pytest.mark.parametrize("fresh", [True, False], ids=["new-database", "existing-database"])
def test_a_full_disk(tmp_path: Path, fresh: bool) -> None:
    """A real full file system: a 4 MiB tmpfs, filled before the server starts."""
    with small_tmpfs(tmp_path / "disk") as disk:
        path = disk / "pushcamp.db"
        url = f"sqlite:///{path}" if fresh else migrated(path)
        _fill(disk)
        result = serve(url, tmp_path)
    assert_refused(result, "disk is full", "disk I/O error")


def test_a_postgresql_that_refuses_connections(tmp_path: Path) -> None:
    with socket_without_listener() as port:
        result = serve(f"postgresql://postgres@127.0.0.1:{port}/pushcamp", tmp_path)
    assert_refused(result, "Connection refused", "connection failed")


@contextlib.contextmanager
def socket_without_listener() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound by nobody listening (kept bound meanwhile)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.skipif(BACKEND != "postgresql", reason="needs PUSHCAMP_TEST_DATABASE_URL")
@pytest.mark.parametrize("fresh", [True, False], ids=["new-database", "existing-database"])
def test_a_read_only_postgresql(tmp_path: Path, fresh: bool) -> None:
    """A database whose transactions are read-only (a hot standby answers the same)."""
    import psycopg

    with fresh_database(tmp_path, "pushcamp_ro") as url:
        if not fresh:
            db = Database(Settings(database_url=url))
            db.migrate()
            db.dispose()
        name = make_url(url).database
        admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        result = serve(url, tmp_path)
    assert_refused(result, "read-only transaction")
