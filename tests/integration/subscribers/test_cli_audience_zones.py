"""``partners set-audience --silent-hours-mode`` and ``--default-timezone`` as a user runs
them (a real process): what they store, read back from the database and through the
store's audience read that the delivery engine uses, and that bad values exit with code 2,
a one-line message and nothing changed (docs/delivery.md, "Local-time launches")."""

from __future__ import annotations

import pytest

from pushcamp.store import Database
from pushcamp.store import sites as sites_q
from tests.conftest import Tenant, run_cli
from tests.integration.subscribers.test_cli_sites import partner_row


def _stored(db: Database, partner_id: str) -> tuple[object, object]:
    row = partner_row(db, partner_id)
    with db.read() as conn:
        audience = sites_q.get_audience(conn, partner_id)
    assert audience is not None
    # The column and what the engine reads agree.
    assert (audience.silent_hours_mode, audience.default_timezone) == (
        row["silent_hours_mode"],
        row["default_timezone"],
    )
    return row["silent_hours_mode"], row["default_timezone"]


def test_silent_hours_mode_and_default_timezone_are_stored(
    tenant: Tenant, db: Database, database_url: str
) -> None:
    pid = tenant.partner_id
    assert _stored(db, pid) == ("drop", None)  # the defaults: drop, UTC
    done = run_cli(
        "partners", "set-audience", pid, "--silent-hours", "22:00-07:00",
        "--silent-hours-mode", "defer", database_url=database_url,
    )  # fmt: skip
    assert done.returncode == 0
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "silent hours 22:00-07:00 (defer), default time zone UTC" in said, said
    assert _stored(db, pid) == ("defer", None)
    done = run_cli(
        "partners", "set-audience", pid, "--default-timezone", "Europe/Berlin",
        database_url=database_url,
    )  # fmt: skip
    assert "default time zone Europe/Berlin" in " ".join(done.stderr.split())
    assert _stored(db, pid) == ("defer", "Europe/Berlin")  # the mode stays as it was
    url = database_url
    run_cli("partners", "set-audience", pid, "--silent-hours-mode", "drop", database_url=url)
    assert _stored(db, pid) == ("drop", "Europe/Berlin")
    run_cli("partners", "set-audience", pid, "--default-timezone", "UTC", database_url=url)
    assert _stored(db, pid) == ("drop", "UTC")
    row = partner_row(db, pid)
    assert (row["silent_start"], row["silent_end"]) == (22 * 60, 7 * 60)  # untouched


@pytest.mark.parametrize(
    "args, message",
    [
        (["--silent-hours-mode", "bogus"], "silent_hours_mode: must be drop or defer"),
        (["--silent-hours-mode", "DEFER"], "silent_hours_mode: must be drop or defer"),
        (["--silent-hours-mode", ""], "silent_hours_mode: must be drop or defer"),
        (["--default-timezone", "Not/AZone"], "default_timezone: must be an IANA time zone"),
        (["--default-timezone", "America"], "default_timezone: must be an IANA time zone"),
        (["--default-timezone", "../../etc/passwd"], "default_timezone: must be an IANA"),
        (["--default-timezone", ""], "default_timezone: must be an IANA time zone"),
        # One bad value: the good one beside it is not stored either.
        (
            ["--silent-hours-mode", "defer", "--default-timezone", "Not/AZone"],
            "default_timezone: must be an IANA time zone",
        ),
        (
            ["--silent-hours-mode", "bogus", "--default-timezone", "Asia/Tokyo"],
            "silent_hours_mode: must be drop or defer",
        ),
    ],
)
def test_bad_mode_or_zone_exits_2_and_changes_nothing(
    tenant: Tenant, db: Database, database_url: str, args: list[str], message: str
) -> None:
    pid = tenant.partner_id
    before = _stored(db, pid)
    result = run_cli("partners", "set-audience", pid, *args, database_url=database_url, check=False)
    assert result.returncode == 2, (args, result.returncode, result.stderr)
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _stored(db, pid) == before


def test_unknown_partner_exits_3(database_url: str) -> None:
    result = run_cli(
        "partners", "set-audience", "nobody-here", "--silent-hours-mode", "defer",
        "--default-timezone", "Europe/Berlin", database_url=database_url, check=False,
    )  # fmt: skip
    assert result.returncode == 3 and "no partner" in result.stderr, result.stderr
