"""``partners set-site`` and ``partners set-audience``: what they store, and that bad
input is refused with exit code 2 and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pushcamp.store import Database
from pushcamp.store.models import Partner
from tests.conftest import Tenant, run_cli


def partner_row(db: Database, partner_id: str) -> dict[str, object]:
    with db.read() as conn:
        row = conn.execute(select(Partner).where(Partner.id == partner_id)).mappings().one()
        return dict(row)


def test_set_site_stores_canonical_origins_and_list_shows_them(
    tenant: Tenant, db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a table wider than a pipe's default 80
    pid = tenant.partner_id
    run_cli(
        "partners", "set-site", pid, "--origin", "https://Shop.Example/",
        "--origin", "http://localhost:3000", database_url=database_url,
    )  # fmt: skip
    assert partner_row(db, pid)["site_origins"] == ["https://shop.example", "http://localhost:3000"]
    listed = run_cli("partners", "list", database_url=database_url).stdout
    assert "https://shop.example" in listed


def test_set_site_refuses_what_is_not_an_origin(
    tenant: Tenant, db: Database, database_url: str
) -> None:
    pid = tenant.partner_id
    run_cli("partners", "set-site", pid, "--origin", "https://a.example", database_url=database_url)
    for bad in ("https://a.example/path", "a.example", "null", "https://x.example?q=1"):
        result = run_cli(
            "partners", "set-site", pid, "--origin", bad, database_url=database_url, check=False
        )
        assert result.returncode == 2, (bad, result.stderr)
    assert partner_row(db, pid)["site_origins"] == ["https://a.example"]
    missing = run_cli(
        "partners", "set-site", "no-such-partner", "--origin", "https://a.example",
        database_url=database_url, check=False,
    )  # fmt: skip
    assert missing.returncode == 3


def test_set_audience(tenant: Tenant, db: Database, database_url: str) -> None:
    pid = tenant.partner_id
    run_cli(
        "partners", "set-audience", pid, "--engagement-days", "30", "--frequency-cap", "3",
        "--silent-hours", "22:00-07:00", database_url=database_url,
    )  # fmt: skip
    row = partner_row(db, pid)
    assert (row["engagement_days"], row["frequency_cap"]) == (30, 3)
    assert (row["silent_start"], row["silent_end"]) == (22 * 60, 7 * 60)
    # Options not given stay as they are; the --no- forms turn a rule off.
    run_cli("partners", "set-audience", pid, "--no-frequency-cap", database_url=database_url)
    row = partner_row(db, pid)
    assert row["frequency_cap"] is None and row["silent_start"] == 22 * 60
    run_cli("partners", "set-audience", pid, "--no-silent-hours", database_url=database_url)
    row = partner_row(db, pid)
    assert row["silent_start"] is None and row["silent_end"] is None
    assert row["engagement_days"] == 30


def test_set_audience_refuses_bad_values(tenant: Tenant, db: Database, database_url: str) -> None:
    pid = tenant.partner_id
    for args in (
        ["--silent-hours", "25:00-07:00"],
        ["--engagement-days", "0"],
        ["--frequency-cap", "0"],
        ["--frequency-cap", "2", "--no-frequency-cap"],
    ):
        result = run_cli(
            "partners", "set-audience", pid, *args, database_url=database_url, check=False
        )
        assert result.returncode == 2, (args, result.stderr)
    row = partner_row(db, pid)
    assert (row["engagement_days"], row["frequency_cap"], row["silent_start"]) == (90, None, None)
