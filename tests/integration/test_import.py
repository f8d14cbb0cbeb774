"""Bulk import (`pushcamp subscribers import`), run as a user runs it, on the real database.

Invariants: every good line is stored and every bad one is reported with its own line
number while the import carries on; importing again updates rows, never duplicates them;
a line's own engagement time wins, otherwise rows stay unengaged unless --engaged-now;
an import touches no other partner's rows.
"""

from __future__ import annotations

import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pushcamp.errors import DependencyUnavailable, NotFound
from pushcamp.services import importer
from pushcamp.store import Database
from pushcamp.store.models import Subscriber
from pushcamp.webpush import b64url_encode
from tests.conftest import Tenant, run_cli


@cache
def _public_keys() -> tuple[str, ...]:
    points = []
    for _ in range(4):
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        points.append(b64url_encode(raw))
    return tuple(points)


def subscription(**fields: Any) -> dict[str, Any]:
    """A valid line: a fresh FCM endpoint and a real P-256 key."""
    return {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(24)}",
        "keys": {"p256dh": _public_keys()[0], "auth": b64url_encode(secrets.token_bytes(16))},
        **fields,
    }


def jsonl(*lines: dict[str, Any] | str) -> str:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)


def rows(db: Database, partner_id: str) -> dict[str, Any]:
    with db.read() as conn:
        found = conn.execute(select(Subscriber).where(Subscriber.partner_id == partner_id))
        return {row.endpoint: row for row in found}


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC times, PostgreSQL aware ones."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def import_cli(tmp_path: Path, database_url: str, partner_id: str, text: str, *options: str) -> Any:
    path = tmp_path / f"{secrets.token_hex(4)}.jsonl"
    path.write_text(text, encoding="utf-8")
    return run_cli(
        "subscribers", "import", partner_id, str(path), *options, database_url=database_url
    )


def import_here(db: Database, partner_id: str, text: str, **options: Any) -> Any:
    """The same import without a subprocess (the CLI adds only the reporting)."""
    return importer.import_subscriptions(db, partner_id, io.BytesIO(text.encode()), **options)


def test_good_lines_stored_bad_lines_reported_by_number(
    tmp_path: Path, database_url: str, db: Database, tenant: Tenant
) -> None:
    good = [
        subscription(language="tr", timezone="Europe/Istanbul", attributes={"plan": "gold"}),
        subscription(attributes={"city": "İstanbul 🎉"}, d_wp_os="Windows"),
        subscription(d_wp_browser="Chrome", d_wp_device="mobile"),
    ]
    bad_key = subscription()
    bad_key["keys"]["auth"] = "too-short"
    wrong_type = subscription(language=7)
    text = jsonl(
        good[0],
        '{"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": ',  # 2: broken JSON
        bad_key,  # 3
        "",  # 4: blank, skipped
        subscription(endpoint="https://169.254.169.254/latest/meta-data"),  # 5: SSRF
        good[1],  # 6
        wrong_type,  # 7
        "[1, 2]",  # 8: not an object
        '{"endpoint": NaN}',  # 9: not strict JSON
        good[2],  # 10
    )
    result = import_cli(tmp_path, database_url, tenant.partner_id, text)
    assert result.stdout == "imported 3 of 9 lines; 6 bad\n"
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in reported] == [
        "line 2", "line 3", "line 5", "line 7", "line 8", "line 9",
    ]  # fmt: skip
    assert "line 3: keys.auth: must be a base64url 16-byte auth secret" in reported
    assert reported[2].startswith("line 5: endpoint: must not point at a private")
    assert "line 7: language: must be a string" in reported
    stored = rows(db, tenant.partner_id)
    assert set(stored) == {s["endpoint"] for s in good}
    first, second, third = (stored[s["endpoint"]] for s in good)
    assert (first.language, first.timezone, first.attributes) == (
        "tr_TR", "Europe/Istanbul", {"plan": "gold"},
    )  # fmt: skip
    assert second.attributes == {"city": "İstanbul 🎉"} and second.os == "Windows"
    assert (third.browser, third.device) == ("Chrome", "mobile")
    assert all(row.active and row.p256dh == _public_keys()[0] for row in stored.values())


def test_reimport_updates_rows_instead_of_duplicating(db: Database, tenant: Tenant) -> None:
    lines = [subscription(language="en-US") for _ in range(3)]
    import_here(db, tenant.partner_id, jsonl(*lines))
    ids = {e: row.id for e, row in rows(db, tenant.partner_id).items()}
    lines[0]["keys"]["p256dh"] = _public_keys()[1]
    lines[0]["language"] = "de-DE"
    summary = import_here(db, tenant.partner_id, jsonl(*lines))
    assert (summary.lines, summary.imported, summary.bad) == (3, 3, 0)
    stored = rows(db, tenant.partner_id)
    assert {e: row.id for e, row in stored.items()} == ids
    updated = stored[lines[0]["endpoint"]]
    assert (updated.p256dh, updated.language) == (_public_keys()[1], "de_DE")


def test_engagement_per_line_default_unengaged_and_engaged_now(
    tmp_path: Path, database_url: str, db: Database, make_tenant: Any
) -> None:
    own = subscription(last_engaged_at="2025-03-04T05:06:07+03:00")
    plain = subscription()
    default, stamped = make_tenant(), make_tenant()
    import_here(db, default.partner_id, jsonl(own, plain))
    stored = rows(db, default.partner_id)
    assert utc(stored[own["endpoint"]].last_engaged_at) == datetime(2025, 3, 4, 2, 6, 7, tzinfo=UTC)
    assert stored[plain["endpoint"]].last_engaged_at is None

    before = datetime.now(UTC)
    import_cli(tmp_path, database_url, stamped.partner_id, jsonl(own, plain), "--engaged-now")
    stored = rows(db, stamped.partner_id)
    assert utc(stored[own["endpoint"]].last_engaged_at) == datetime(2025, 3, 4, 2, 6, 7, tzinfo=UTC)
    engaged = utc(stored[plain["endpoint"]].last_engaged_at)
    assert engaged is not None
    assert before - timedelta(seconds=1) <= engaged <= datetime.now(UTC)


def test_same_endpoint_twice_in_one_batch_later_line_wins(db: Database, tenant: Tenant) -> None:
    first = subscription(language="en-US", timezone="Europe/Berlin")
    again = {**first, "keys": {**first["keys"], "p256dh": _public_keys()[2]}, "language": "fr"}
    del again["timezone"]
    other = subscription()
    summary = import_here(db, tenant.partner_id, jsonl(first, other, again))
    assert (summary.lines, summary.imported, summary.bad) == (3, 3, 0)
    stored = rows(db, tenant.partner_id)
    assert len(stored) == 2
    row = stored[first["endpoint"]]
    # As if the two lines were upserted one after the other: the later key and language,
    # and the time zone the later line did not send is kept.
    assert (row.p256dh, row.language, row.timezone) == (
        _public_keys()[2], "fr_FR", "Europe/Berlin",
    )  # fmt: skip


def test_stdin_and_counts(database_url: str, tenant: Tenant) -> None:
    text = jsonl(*(subscription() for _ in range(4)), "{}")
    result = run_cli(
        "subscribers", "import", tenant.partner_id, "-", "--batch-size", "3",
        database_url=database_url, stdin=text,
    )  # fmt: skip
    assert result.stdout == "imported 4 of 5 lines; 1 bad\n"
    assert "line 5: endpoint: is required" in result.stderr
    counted = run_cli("subscribers", "count", tenant.partner_id, database_url=database_url)
    assert counted.stdout == "active 4\ninactive 0\n"


def test_unknown_partner_exits_3_and_writes_nothing(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "subs.jsonl"
    path.write_text(jsonl(subscription()))
    missing = f"nobody{secrets.token_hex(3)}"
    result = run_cli(
        "subscribers", "import", missing, str(path), database_url=database_url, check=False
    )
    assert result.returncode == 3 and "no partner" in result.stderr
    assert result.stdout == ""
    counted = run_cli("subscribers", "count", missing, database_url=database_url, check=False)
    assert counted.returncode == 3


def test_import_into_one_partner_leaves_another_untouched(db: Database, make_tenant: Any) -> None:
    a, b = make_tenant(), make_tenant()
    shared = subscription(language="en-US")
    import_here(db, b.partner_id, jsonl(shared))
    before = rows(db, b.partner_id)
    changed = {**shared, "language": "tr", "last_engaged_at": "2025-01-01T00:00:00Z"}
    import_here(db, a.partner_id, jsonl(changed, subscription()))
    assert len(rows(db, a.partner_id)) == 2
    after = rows(db, b.partner_id)
    assert set(after) == set(before) == {shared["endpoint"]}
    row = after[shared["endpoint"]]
    assert (row.language, row.last_engaged_at, row.updated_at) == (
        "en_US", None, before[shared["endpoint"]].updated_at,
    )  # fmt: skip


def test_errors_file_lists_every_bad_line_and_terminal_shows_twenty(
    tmp_path: Path, database_url: str, tenant: Tenant
) -> None:
    errors = tmp_path / "errors.txt"
    text = jsonl(*(["not json"] * 25), subscription())
    result = import_cli(
        tmp_path, database_url, tenant.partner_id, text, "--errors-file", str(errors)
    )
    assert result.stdout == "imported 1 of 26 lines; 25 bad\n"
    shown = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert len(shown) == 20
    listed = errors.read_text().splitlines()
    assert len(listed) == 25 and listed[24].startswith("line 25: invalid JSON")


# --- the service on its own (no subprocess): edge cases of reading ----------------------


def test_long_lines_refused_without_stopping_and_line_numbers_kept(
    db: Database, tenant: Tenant
) -> None:
    good = subscription()
    huge = json.dumps(subscription(attributes={"pad": "x" * 150}))
    huge = huge[:-1] + ', "junk": "' + "y" * 40_000 + '"}'
    source = io.BytesIO(
        (
            "\ufeff" + json.dumps(good) + "\r\n"  # 1: with a byte-order mark and CRLF
            + huge + "\n"  # 2: over 16 KiB
            + "\xff\n"  # 3: text, but not JSON
            + '{"endpoint": "a", "endpoint": "b"}\n'  # 4: duplicate key
        ).encode()
        + b"\xff\xfe\n"  # 5: not UTF-8
        + json.dumps(subscription()).encode()  # 6: the last line, without a line break
    )  # fmt: skip
    progress: list[importer.ImportProgress] = []
    summary = importer.import_subscriptions(
        db, tenant.partner_id, source, batch_size=1, on_progress=progress.append
    )
    assert (summary.lines, summary.imported, summary.bad) == (6, 2, 4)
    assert [(b.number, b.reason.split(":")[0]) for b in summary.bad_lines] == [
        (2, "longer than 16,384 bytes"),
        (3, "invalid JSON"),
        (4, "invalid JSON"),
        (5, "not UTF-8 (byte 1)"),
    ]
    assert "appears twice" in summary.bad_lines[2].reason
    assert progress[-1].bytes_read == len(source.getvalue()) == summary.bytes_read
    assert good["endpoint"] in rows(db, tenant.partner_id)


def test_unknown_partner_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        importer.import_subscriptions(db, "nobody-here", io.BytesIO(b""))


def test_database_failure_names_the_committed_lines(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = db.write
    calls = 0

    def failing_write() -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DependencyUnavailable("OperationalError")
        return real_write()

    monkeypatch.setattr(db, "write", failing_write)
    lines = [subscription() for _ in range(5)]
    with pytest.raises(importer.ImportInterrupted) as caught:
        import_here(
            db, tenant.partner_id, jsonl(lines[0], lines[1], "bad", *lines[2:]), batch_size=2
        )
    assert (caught.value.imported, caught.value.done_through) == (2, 2)
    assert "lines 1 to 2 are done (2 subscriptions committed)" in str(caught.value)
    assert set(rows(db, tenant.partner_id)) == {lines[0]["endpoint"], lines[1]["endpoint"]}


def test_keys_stored_in_their_canonical_spelling(db: Database, tenant: Tenant) -> None:
    line = subscription()
    canonical_auth = line["keys"]["auth"]
    # Padded, standard alphabet, stray whitespace: the lenient decoder takes all three.
    p256dh = _public_keys()[3].replace("-", "+").replace("_", "/") + "=" * 3
    line["keys"] = {"p256dh": p256dh, "auth": f" {canonical_auth}== "}
    summary = import_here(db, tenant.partner_id, jsonl(line))
    assert (summary.imported, summary.bad) == (1, 0)
    row = rows(db, tenant.partner_id)[line["endpoint"]]
    assert (row.p256dh, row.auth) == (_public_keys()[3], canonical_auth)


def test_reason_is_whole(db: Database, tenant: Tenant) -> None:
    summary = import_here(db, tenant.partner_id, jsonl(subscription(endpoint="http://x.example/")))
    assert summary.bad_lines[0].reason == (
        "endpoint: must be an https URL (plain http only for a loopback host listed in "
        "PUSHCAMP_PUSH_ALLOWED_HOSTS)"
    )


def test_unreachable_database_exits_5(tmp_path: Path) -> None:
    path = tmp_path / "subs.jsonl"
    path.write_text(jsonl(subscription()))
    result = run_cli(
        "subscribers", "import", "100000001", str(path),
        database_url="postgresql://postgres@127.0.0.1:1/none", check=False,
    )  # fmt: skip
    assert result.returncode == 5 and "database is unreachable" in result.stderr
    assert result.stdout == ""


def test_spellings_of_one_endpoint_import_as_one_row(
    tmp_path: Path, database_url: str, db: Database, tenant: Tenant, client: Any
) -> None:
    """The importer stores endpoints in the subscribe endpoint's canonical spelling: in
    one file, across imports, and against a browser that subscribed over HTTP."""
    path = f"/fcm/send/AbC{secrets.token_urlsafe(8)}"
    canonical = f"https://fcm.googleapis.com{path}"
    shouty = subscription(endpoint=f"HTTPS://FCM.GoogleAPIs.com.:443{path}", language="en-US")
    plain = {**subscription(endpoint=canonical), "language": "fr"}
    out = import_cli(tmp_path, database_url, tenant.partner_id, jsonl(shouty, plain)).stdout
    assert out.strip().splitlines()[-1] == "imported 2 of 2 lines; 0 bad"
    stored = rows(db, tenant.partner_id)
    assert list(stored) == [canonical]
    assert stored[canonical].language == "fr_FR"  # the later line won
    import_cli(tmp_path, database_url, tenant.partner_id, jsonl(shouty))
    assert list(rows(db, tenant.partner_id)) == [canonical]
    # A browser subscribing over HTTP in yet another spelling finds the imported row.
    body = {
        "partner_id": tenant.partner_id,
        **subscription(endpoint=f"https://Fcm.GoogleApis.Com{path}"),
    }
    assert client.post("/v1/subscriptions", json=body).status_code == 200
    assert list(rows(db, tenant.partner_id)) == [canonical]
    # Another port on a push service is a bad line.
    summary = import_here(
        db,
        tenant.partner_id,
        jsonl(subscription(endpoint=f"https://fcm.googleapis.com:8443{path}")),
    )
    assert [str(b) for b in summary.bad_lines] == [
        "line 1: endpoint: must not name a port other than 443 on a push-service host"
    ]


def test_builtins_inside_attributes_import_as_the_builtins(
    tmp_path: Path, database_url: str, db: Database, tenant: Tenant
) -> None:
    tagged = subscription(
        attributes={
            "d_wp_browser": "Firefox",
            "d_wp_os": "Android",
            "d_wp_device": "mobile",
            "plan": "gold",
        }
    )
    both = subscription(d_wp_device="desktop", attributes={"d_wp_device": "tablet"})
    wrong = subscription(attributes={"d_wp_device": "phone"})
    result = import_cli(tmp_path, database_url, tenant.partner_id, jsonl(tagged, both, wrong))
    assert result.stdout.strip().splitlines()[-1] == "imported 2 of 3 lines; 1 bad"
    assert "line 3: attributes.d_wp_device: must be desktop, mobile or tablet" in result.stderr
    stored = rows(db, tenant.partner_id)
    row = stored[tagged["endpoint"]]
    assert (row.browser, row.os, row.device) == ("Firefox", "Android", "mobile")
    assert row.attributes == {"plan": "gold"}
    row = stored[both["endpoint"]]
    assert row.device == "desktop" and row.attributes == {}


# --- hostile files: every line either imported or reported, never a traceback -----------


def _now_plus(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


RANGE = "last_engaged_at: must be from 1970-01-01T00:00:00Z to now"
NOT_ISO = "last_engaged_at: must be an ISO 8601 timestamp"
# One group per run, each with at most 20 bad lines (the terminal shows the first 20).
# A group is its lines and its line ending. A line is a good subscription (a dict, with
# the engagement time expected in the database), a bad one (raw bytes and the start of
# its reason), or a blank one (neither counted nor reported).
HOSTILE: dict[str, tuple[str, list[Any]]] = {
    "timestamps, a BOM and CRLF": (
        "\r\n",
        [
            (
                "good",
                {"last_engaged_at": "2025-03-04T05:06:07+03:00"},
                datetime(2025, 3, 4, 2, 6, 7),
            ),
            ("bad", {"last_engaged_at": "0001-01-01T00:00:00+14:00"}, RANGE),  # overflows
            ("bad", {"last_engaged_at": "9999-12-31T23:59:59-14:00"}, RANGE),  # overflows
            ("bad", {"last_engaged_at": "9999-12-31T23:59:59Z"}, RANGE),
            ("bad", {"last_engaged_at": _now_plus(1)}, RANGE),
            ("good", {"last_engaged_at": "2020-01-01T00:00:00"}, datetime(2020, 1, 1)),
            ("bad", {"last_engaged_at": "0001-01-01T00:00:00Z"}, RANGE),
            ("bad", {"last_engaged_at": "1969-12-31T23:59:59Z"}, RANGE),
            ("blank", b""),
            ("bad", {"last_engaged_at": "2025-02-30T00:00:00Z"}, NOT_ISO),
            ("bad", {"last_engaged_at": ""}, NOT_ISO),
            ("bad", {"last_engaged_at": 1_700_000_000}, NOT_ISO),
            ("bad", {"last_engaged_at": True}, NOT_ISO),
            ("bad", {"last_engaged_at": ["2025-01-01T00:00:00Z"]}, NOT_ISO),
            ("bad", {"last_engaged_at": {"at": "2025-01-01T00:00:00Z"}}, NOT_ISO),
            (
                "bad",
                b'{"endpoint": "https://fcm.googleapis.com/x", "last_engaged_at": 1e400}',
                "keys: must be an object",
            ),
            ("good", {"last_engaged_at": "1970-01-01T00:00:00Z"}, datetime(1970, 1, 1)),
            ("good", {}, None),
        ],
    ),
    "a wrong type in every field": (
        "\n",
        [
            ("good", {"language": "tr", "attributes": {"n": 1.5, "b": True}}, None),
            ("bad", {"endpoint": 12}, "endpoint: must be a string"),
            ("bad", {"endpoint": None}, "endpoint: is required"),
            ("bad", {"keys": "p256dh"}, "keys: must be an object with p256dh and auth"),
            ("bad", {"keys": [1, 2]}, "keys: must be an object with p256dh and auth"),
            (
                "bad",
                {"keys": {"p256dh": 1, "auth": b64url_encode(b"x" * 16)}},
                "keys.p256dh: must be a string",
            ),
            (
                "bad",
                {"keys": {"p256dh": _public_keys()[0], "auth": False}},
                "keys.auth: must be a string",
            ),
            ("bad", {"language": 7}, "language: must be a string"),
            ("bad", {"timezone": ["Europe/Istanbul"]}, "timezone: must be a string"),
            ("bad", {"attributes": "plan=gold"}, "attributes: must be an object"),
            (
                "bad",
                {"attributes": {"plan": ["gold"]}},
                "attributes.plan: must be a string, number or boolean",
            ),
            (
                "bad",
                {"attributes": {"plan": {"a": None}}},
                "attributes.plan: must be a string, number or boolean",
            ),
            ("bad", {"d_wp_browser": {}}, "d_wp_browser: must be a string"),
            ("bad", {"d_wp_os": 1.5}, "d_wp_os: must be a string"),
            ("bad", {"d_wp_device": True}, "d_wp_device: must be a string"),
            ("bad", {"attributes": {"d_wp_device": 3}}, "attributes.d_wp_device: must be a string"),
            ("good", {"d_wp_device": "tablet"}, None),
        ],
    ),
    "bytes and JSON": (
        "\n",
        [
            ("bad", b'{"endpoint": "\xff\xfe"}', "not UTF-8 (byte 15)"),
            ("bad", b'{"endpoint": "a\x00b"}', "invalid JSON: Invalid control character"),
            ("bad", b"\x00", "invalid JSON"),
            ("good", {"attributes": {"city": "\u0130stanbul \U0001f389"}}, None),
            (
                "bad",
                {"endpoint": "https://fcm.googleapis.com/\u0000"},
                "endpoint: must not contain NUL",
            ),
            ("bad", b'{"language": "\\ud800"}', "endpoint: is required"),
            ("bad", {"language": "\ud800"}, "language: must be valid Unicode"),
            ("bad", {"attributes": {"\udfff": 1}}, "attributes.\\udfff: invalid attribute name"),
            ("bad", b'{"attributes": {"n": 1e400}}', "endpoint: is required"),
            (
                "bad",
                {"attributes": {"n": float("inf")}},
                "invalid JSON: Infinity is not valid JSON",
            ),
            ("bad", {"attributes": {"n": float("nan")}}, "invalid JSON: NaN is not valid JSON"),
            (
                "bad",
                b'{"endpoint": 1, "endpoint": 2}',
                "invalid JSON: key 'endpoint' appears twice",
            ),
            (
                "bad",
                b'{"\\u001b[2J": 1, "\\u001b[2J": 2}',
                "invalid JSON: key '\\x1b[2J' appears twice",
            ),
            ("blank", b" \t "),
            ("bad", b"[" * 100_000, "longer than 16,384 bytes"),
            ("bad", b"[" * 10_000, "invalid JSON: nested too deeply"),
            ("bad", {"endpoint": [[0] * 4] * 1000}, "endpoint: must be a string"),
            ("bad", b'{"n": ' + b"9" * 5000 + b"}", "invalid JSON: a number with too many digits"),
            ("bad", {"attributes": {"pad": "x" * 17_000}}, "longer than 16,384 bytes"),
            ("bad", b"null", "must be a JSON object"),
            ("good", {"language": "en-US"}, None),  # the last line, without a line break
        ],
    ),
}


@pytest.mark.parametrize("group", list(HOSTILE))
def test_hostile_lines_reported_and_every_good_line_committed(
    group: str, tmp_path: Path, database_url: str, db: Database, tenant: Tenant
) -> None:
    """Issue 11: whatever a line holds, the import reports it by number and carries on,
    commits every good line, and exits 0 without a traceback."""
    ending, items = HOSTILE[group]
    raw_lines: list[bytes] = []
    good: dict[str, datetime | None] = {}
    expected: list[str] = []
    for number, (kind, content, *rest) in enumerate(items, start=1):
        if kind == "good":
            line = subscription(**content)
            good[line["endpoint"]] = rest[0] and rest[0].replace(tzinfo=UTC)
            raw = json.dumps(line).encode()
        elif kind == "bad":
            if isinstance(content, dict):  # a valid subscription but for these fields
                content = json.dumps(subscription(**content)).encode("utf-8", "surrogatepass")
            raw = content
            expected.append(f"line {number}: {rest[0]}")
        else:
            raw = content
        raw_lines.append(raw)
    text = b"\xef\xbb\xbf" if ending == "\r\n" else b""  # a byte-order mark some tools write
    text += ending.encode().join(raw_lines)
    text += ending.encode() if ending == "\r\n" else b""  # else the last line has no break
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(text)
    errors = tmp_path / "errors.txt"
    result = run_cli(
        "subscribers", "import", tenant.partner_id, str(path), "--errors-file", str(errors),
        database_url=database_url, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    counted = len(good) + len(expected)
    assert result.stdout == f"imported {len(good)} of {counted} lines; {len(expected)} bad\n"
    shown = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    listed = errors.read_text(encoding="utf-8").splitlines()
    assert len(shown) == len(listed) == len(expected) <= 20
    for want, on_terminal, in_file in zip(expected, shown, listed, strict=True):
        assert on_terminal.startswith(want) and in_file.startswith(want), (want, on_terminal)
    stored = rows(db, tenant.partner_id)
    assert len(stored) == len(good) and set(stored) == set(good)
    assert {e: utc(row.last_engaged_at) for e, row in stored.items()} == good
