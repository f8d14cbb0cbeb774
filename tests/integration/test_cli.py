"""The command line of §7, run as a user runs it: as a real process."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pushcamp import webpush
from pushcamp.services import keys
from pushcamp.store import Database
from pushcamp.store.models import ApiToken, VapidKey
from tests.conftest import run_cli


def new_id() -> str:
    return f"c{secrets.token_hex(5)}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["simulator"],
        ["partners"],
        ["partners", "create"],
        ["partners", "set-limits"],
        ["tokens"],
        ["tokens", "create"],
        ["tokens", "revoke"],
        ["partners", "list"],
        ["partners", "set-site"],
        ["partners", "set-audience"],
        ["vapid"],
        ["vapid", "import"],
        ["vapid", "show"],
        ["db"],
        ["db", "upgrade"],
        ["subscribers"],
        ["subscribers", "import"],
        ["subscribers", "count"],
        ["launches"],
        ["launches", "watch"],
        ["launches", "show"],
        ["launches", "resume"],
    ],
)
def test_help_everywhere(command: list[str], database_url: str) -> None:
    result = run_cli(*command, "--help", database_url=database_url, check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


# --- the documented exit codes: 2 invalid input, 3 not found, 4 already exists, 5 database
# unreachable, each with its one-line message on stderr -----------------------------------

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


@pytest.fixture(scope="module")
def known_partner(database_url: str) -> str:
    pid = new_id()
    run_cli("partners", "create", pid, database_url=database_url)
    return pid


@pytest.mark.parametrize(
    "command, code, message",
    [
        (["partners", "create", "{pid}"], 4, "partner '{pid}' already exists"),
        (["partners", "create", "bad id!"], 2, "partner_id: must be"),
        (["partners", "set-limits", "{pid}", "--v1-limit", "0"], 2, "v1_limit: must be"),
        (["partners", "set-limits", "nobody-here", "--v1-limit", "5"], 3, "no partner"),
        (["partners", "set-site", "{pid}", "--origin", "ftp://x"], 2, "is not an origin"),
        (["partners", "set-site", "nobody-here", "--origin", "https://a.example"], 3, "no partner"),
        (["partners", "set-audience", "nobody-here", "--engagement-days", "3"], 3, "no partner"),
        (["tokens", "create", "nobody-here"], 3, "no partner 'nobody-here'"),
        (["tokens", "revoke", "pc_ffffffff"], 3, "no token with prefix 'ffffffff'"),
        (["vapid", "import", "{pid}", "--public-key", "x", "--private-key", "x"], 2, "not a P-256"),
        (["vapid", "show", "nobody-here"], 3, "no partner 'nobody-here'"),
        (["subscribers", "import", "nobody-here", "-"], 3, "no partner 'nobody-here'"),
        (["subscribers", "count", "nobody-here"], 3, "no partner 'nobody-here'"),
        (["launches", "show", "987654321"], 3, "no launch 987654321"),
        (["launches", "resume", "987654321"], 3, "no launch 987654321"),
        (["launches", "watch", "987654321"], 3, "has no launch"),
    ],
)
def test_documented_exit_codes(
    command: list[str], code: int, message: str, known_partner: str, database_url: str
) -> None:
    args = [part.format(pid=known_partner) for part in command]
    result = run_cli(*args, database_url=database_url, stdin="", check=False)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert message.format(pid=known_partner) in result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_vapid_import_for_an_unknown_partner_is_not_found(database_url: str) -> None:
    pair = keys.generate()
    result = run_cli(
        "vapid",
        "import",
        "nobody-here",
        "--public-key",
        pair.public_key,
        "--private-key",
        pair.private_key,
        database_url=database_url,
        check=False,
    )
    assert result.returncode == 3 and "no partner 'nobody-here'" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["partners", "list"],
        ["partners", "create", "p-unreachable"],
        ["tokens", "create", "p-unreachable"],
        ["vapid", "show", "p-unreachable"],
        ["subscribers", "import", "p-unreachable", "-"],
        ["subscribers", "count", "p-unreachable"],
        ["launches", "show", "1"],
        ["db", "upgrade"],
    ],
)
def test_an_unreachable_database_exits_5(command: list[str]) -> None:
    result = run_cli(*command, database_url=UNREACHABLE, stdin="", check=False)
    assert result.returncode == 5, (result.returncode, result.stderr)
    assert result.stderr.startswith("error: the database is unreachable")
    assert "Traceback" not in result.stderr


def test_tokens_create_prints_the_token_alone_on_stdout(
    database_url: str, db: Database, client: httpx.Client
) -> None:
    pid = new_id()
    created = run_cli("partners", "create", pid, "--name", "Shop", database_url=database_url)
    assert "VAPID public key:" in created.stderr
    result = run_cli("tokens", "create", pid, database_url=database_url)
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("pc_")
    with Session(db.engine) as s:
        stored = s.scalars(select(ApiToken).where(ApiToken.partner_id == pid)).one()
    # Only a hash is kept: the token itself appears nowhere in the row.
    assert token.encode() not in stored.secret_hash and len(stored.secret_hash) == 32
    assert token.startswith(f"pc_{stored.prefix}_")
    r = client.post(
        "/v1/single",
        json={"partner_id": pid, "title": "from cli", "language": "en_US"},
        headers={"Authorization": token},
    )
    assert r.status_code == 201


def test_revoked_token_gets_401_within_the_auth_cache_time(
    database_url: str, client: httpx.Client
) -> None:
    pid = new_id()
    run_cli("partners", "create", pid, database_url=database_url)
    token = run_cli("tokens", "create", pid, database_url=database_url).stdout.strip()
    keep = run_cli("tokens", "create", pid, database_url=database_url).stdout.strip()

    def create(tok: str, title: str) -> int:
        body = {"partner_id": pid, "title": title, "language": "en_US"}
        return client.post("/v1/single", json=body, headers={"Authorization": tok}).status_code

    assert create(token, "before revoke") == 201  # now remembered by the running server
    prefix = token.split("_")[1]
    run_cli("tokens", "revoke", f"pc_{prefix}", database_url=database_url)
    # Counted from the revocation's commit (the command's exit), not from its start: a
    # command slow to start on a busy machine would otherwise eat the whole window.
    revoked_at = time.monotonic()
    codes: list[int] = []
    while not codes or time.monotonic() - revoked_at < 4:
        codes.append(create(token, f"after revoke {len(codes)}"))
        if codes[-1] == 401:
            break
        time.sleep(0.1)
    assert codes[-1] == 401, codes  # the default cache time is 2 s
    assert create(keep, "other token") == 201
    missing = run_cli("tokens", "revoke", "pc_ffffffff", database_url=database_url, check=False)
    assert missing.returncode != 0 and "no token" in missing.stderr


def test_partner_creation_generates_a_p256_pair_and_refuses_duplicates(
    database_url: str, db: Database
) -> None:
    pid = new_id()
    run_cli(
        "partners",
        "create",
        pid,
        "--v1-limit",
        "50",
        "--v2-limit",
        "7000",
        database_url=database_url,
    )
    with Session(db.engine) as s:
        key = s.scalars(select(VapidKey).where(VapidKey.partner_id == pid)).one()
    assert len(webpush.b64url_decode(key.public_key)) == 65
    shown = run_cli("vapid", "show", pid, database_url=database_url)
    assert shown.stdout.strip() == key.public_key
    again = run_cli("partners", "create", pid, database_url=database_url, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = run_cli("partners", "create", "bad id!", database_url=database_url, check=False)
    assert bad.returncode != 0
    listed = run_cli("partners", "list", database_url=database_url)
    assert pid in listed.stdout and "7000" in listed.stdout


def test_vapid_import_keeps_the_given_pair_and_never_prints_the_private_key(
    database_url: str, db: Database
) -> None:
    pid = new_id()
    run_cli("partners", "create", pid, database_url=database_url)
    pair = keys.generate()
    result = run_cli(
        "vapid",
        "import",
        pid,
        "--public-key",
        pair.public_key,
        "--private-key",
        "-",
        database_url=database_url,
        stdin=pair.private_key,
    )
    assert pair.private_key not in result.stdout + result.stderr
    with Session(db.engine) as s:
        key = s.scalars(select(VapidKey).where(VapidKey.partner_id == pid)).one()
    assert (key.public_key, key.private_key) == (pair.public_key, pair.private_key)
    other = keys.generate()
    mismatch = run_cli(
        "vapid",
        "import",
        pid,
        "--public-key",
        other.public_key,
        "--private-key",
        pair.private_key,
        database_url=database_url,
        check=False,
    )
    assert mismatch.returncode != 0 and "public_key" in mismatch.stderr


def test_set_limits_validates_and_reports(database_url: str) -> None:
    pid = new_id()
    run_cli("partners", "create", pid, database_url=database_url)
    ok = run_cli("partners", "set-limits", pid, "--v2-limit", "100", database_url=database_url)
    assert "v2 100/min" in ok.stderr
    bad = run_cli(
        "partners", "set-limits", pid, "--v1-limit", "0", database_url=database_url, check=False
    )
    assert bad.returncode != 0
    unknown = run_cli(
        "partners",
        "set-limits",
        "nobody-here",
        "--v1-limit",
        "5",
        database_url=database_url,
        check=False,
    )
    assert unknown.returncode != 0 and "no partner" in unknown.stderr


def test_db_upgrade_is_idempotent(database_url: str) -> None:
    for _ in range(2):
        assert "newest schema" in run_cli("db", "upgrade", database_url=database_url).stderr


def test_simulator_command_serves_rfc8030_subscriptions(tmp_path) -> None:
    import os
    import re
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "pushcamp", "simulator", "--port", "0", "--no-decrypt"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        r = httpx.post(match.group(1) + "/subscriptions", json={}, timeout=5)
        assert r.status_code == 201
        sub = r.json()
        assert sub["endpoint"].startswith(match.group(1)) and sub["keys"]["auth"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
