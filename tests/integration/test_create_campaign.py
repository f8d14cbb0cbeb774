"""POST /v1/single over real HTTP against a real server, one test per rule of §2.1 and
the error table of §2."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from pushcamp.store import Database
from pushcamp.store.models import Campaign
from tests.conftest import Tenant

BAD = {"message": "Bad Request"}


def create(client: httpx.Client, tenant: Tenant, **fields: object) -> httpx.Response:
    body = tenant.body(**{"title": "Summer sale", "language": "en_US", **fields})
    return client.post("/v1/single", json=body, headers=tenant.auth)


def count_campaigns(db: Database, partner_id: str) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count()).select_from(Campaign).where(Campaign.partner_id == partner_id)
        ).scalar_one()


def test_create_returns_201_with_integer_id_and_draft_campaign(
    client: httpx.Client, tenant: Tenant
) -> None:
    r = create(client, tenant, is_all=True)
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and isinstance(body["campaign_id"], int)
    status = client.get(f"/v1/single/{body['campaign_id']}", headers=tenant.auth).json()
    assert status["status"] == "Draft" and status["is_all"] is True
    assert status["title"] == "Summer sale" and status["language"] == "en_US"


def test_is_all_defaults_to_false(client: httpx.Client, tenant: Tenant) -> None:
    cid = create(client, tenant).json()["campaign_id"]
    assert client.get(f"/v1/single/{cid}", headers=tenant.auth).json()["is_all"] is False


def test_hundred_emoji_pass_and_101_ascii_fail(client: httpx.Client, tenant: Tenant) -> None:
    assert create(client, tenant, title="🚀" * 100).status_code == 201
    r = create(client, tenant, title="a" * 101)
    assert r.status_code == 400
    assert r.json()["message"] == "Bad Request"
    assert [e["field"] for e in r.json()["errors"]] == ["title"]


def test_duplicate_title_is_400_and_other_partner_may_reuse_it(
    client: httpx.Client, tenant: Tenant, make_tenant
) -> None:
    assert create(client, tenant, title="Black Friday").status_code == 201
    dup = create(client, tenant, title="Black Friday")
    assert dup.status_code == 400 and dup.json()["message"] == "Bad Request"
    other = make_tenant(v1_limit=1000)
    assert create(client, other, title="Black Friday").status_code == 201


def test_deleting_a_campaign_frees_its_title(client: httpx.Client, tenant: Tenant) -> None:
    cid = create(client, tenant, title="Reusable").json()["campaign_id"]
    r = client.request("DELETE", f"/v1/single/{cid}", json=tenant.body(), headers=tenant.auth)
    assert r.status_code == 200 and r.json() == {"success": True, "campaign_id": cid}
    assert create(client, tenant, title="Reusable").status_code == 201
    again = client.request("DELETE", f"/v1/single/{cid}", json=tenant.body(), headers=tenant.auth)
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"is_all": "false"}, "is_all"),
        ({"is_all": 0}, "is_all"),
        ({"is_all": None}, "is_all"),
        ({"title": 123}, "title"),
        ({"title": ["a"]}, "title"),
        ({"language": "en-US"}, "language"),
        ({"language": "english"}, "language"),
        ({"language": 1}, "language"),
        ({"title": ""}, "title"),
        ({"title": "nul\x00byte"}, "title"),
    ],
)
def test_wrong_types_and_values_are_400_naming_the_field(
    client: httpx.Client, tenant: Tenant, db: Database, fields: dict, bad_field: str
) -> None:
    before = count_campaigns(db, tenant.partner_id)
    r = create(client, tenant, **fields)
    assert r.status_code == 400
    assert r.json()["message"] == "Bad Request"
    assert bad_field in {e["field"] for e in r.json()["errors"]}
    assert count_campaigns(db, tenant.partner_id) == before


def test_partner_id_as_number_is_400(client: httpx.Client, tenant: Tenant) -> None:
    r = client.post(
        "/v1/single",
        json={"partner_id": 100000001, "title": "x", "language": "en_US"},
        headers=tenant.auth,
    )
    assert r.status_code == 400
    assert "partner_id" in {e["field"] for e in r.json()["errors"]}


@pytest.mark.parametrize("missing", ["partner_id", "title", "language"])
def test_missing_required_field_is_400(client: httpx.Client, tenant: Tenant, missing: str) -> None:
    body = tenant.body(title="t", language="en_US")
    del body[missing]
    r = client.post("/v1/single", json=body, headers=tenant.auth)
    assert r.status_code == 400
    assert missing in {e["field"] for e in r.json()["errors"]}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b'{"partner_id": "x",}',
        b"[]",
        b'"a string"',
        b"null",
        b"42",
        b'{"title": NaN}',
        b"\xff\xfe not utf-8",
        b"[" * 5000 + b"]" * 5000,
        b'{"a": 1}{"b": 2}',
        b'{"partner_id": "' + b"9" * 5000 + b'"}',
        b'{"n": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_json_is_400_never_422_or_500(
    client: httpx.Client, tenant: Tenant, raw: bytes
) -> None:
    r = client.post(
        "/v1/single", content=raw, headers={**tenant.auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Bad Request"


def test_body_without_json_content_type_is_still_parsed(
    client: httpx.Client, tenant: Tenant
) -> None:
    raw = json.dumps(tenant.body(title="plain text type", language="tr_TR"))
    r = client.post(
        "/v1/single", content=raw, headers={**tenant.auth, "Content-Type": "text/plain"}
    )
    assert r.status_code == 201


def test_unknown_fields_are_ignored(client: httpx.Client, tenant: Tenant) -> None:
    assert create(client, tenant, title="extra", color="blue").status_code == 201


@pytest.mark.parametrize("scheme", ["Bearer {t}", "bearer {t}", "BEARER {t}", "{t}"])
def test_bearer_and_bare_token_accepted(client: httpx.Client, tenant: Tenant, scheme: str) -> None:
    r = client.post(
        "/v1/single",
        json=tenant.body(title=f"auth {scheme}", language="en_GB"),
        headers={"Authorization": scheme.format(t=tenant.token)},
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "pc_00000000_" + "a" * 43],
)
def test_missing_or_bad_credentials_are_401(
    client: httpx.Client, tenant: Tenant, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = client.post("/v1/single", json=tenant.body(title="t", language="en_US"), headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthorized"}


def test_tampered_secret_is_401(client: httpx.Client, tenant: Tenant) -> None:
    last = "A" if tenant.token[-1] != "A" else "B"
    r = client.post(
        "/v1/single",
        json=tenant.body(title="t", language="en_US"),
        headers={"Authorization": tenant.token[:-1] + last},
    )
    assert r.status_code == 401


def test_token_with_another_partners_id_is_401_and_writes_nothing(
    client: httpx.Client, tenant: Tenant, make_tenant, db: Database
) -> None:
    other = make_tenant()
    r = client.post(
        "/v1/single",
        json={"partner_id": other.partner_id, "title": "steal", "language": "en_US"},
        headers=tenant.auth,
    )
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    assert count_campaigns(db, other.partner_id) == 0
    # An id that does not exist answers the same: no hint of which partners exist.
    r = client.post(
        "/v1/single",
        json={"partner_id": "no-such-partner", "title": "x", "language": "en_US"},
        headers=tenant.auth,
    )
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}


def test_campaign_of_another_partner_is_invisible(
    client: httpx.Client, tenant: Tenant, make_tenant
) -> None:
    cid = create(client, tenant, title="mine").json()["campaign_id"]
    other = make_tenant()
    r = client.get(f"/v1/single/{cid}", headers=other.auth)
    assert r.status_code == 400
    r = client.request("DELETE", f"/v1/single/{cid}", json=other.body(), headers=other.auth)
    assert r.status_code == 400
    assert client.get(f"/v1/single/{cid}", headers=tenant.auth).json()["status"] == "Draft"


def test_oversized_body_is_refused_without_reading_it(client: httpx.Client, tenant: Tenant) -> None:
    big = b'{"partner_id": "' + b"x" * (70 * 1024) + b'"}'
    r = client.post("/v1/single", content=big, headers=tenant.auth)
    assert r.status_code == 413

    def chunks():  # no Content-Length: streamed with chunked encoding
        for _ in range(100):
            yield b" " * 1024

    r = client.post("/v1/single", content=chunks(), headers=tenant.auth)
    assert r.status_code == 413
    assert create(client, tenant, title="after a big one").status_code == 201


def test_launch_and_delete_with_non_numeric_id_are_400(
    client: httpx.Client, tenant: Tenant
) -> None:
    for method, path in [
        ("POST", "/v1/single/campaign_id"),
        ("POST", "/v2/single/campaign_id"),
        ("DELETE", "/v1/single/campaign_id"),
        ("GET", "/v1/single/-1"),
        ("GET", "/v1/single/99999999999999999999999"),
    ]:
        r = client.request(method, path, json=tenant.body(), headers=tenant.auth)
        assert r.status_code == 400, (method, path, r.text)
        assert r.json()["message"] == "Bad Request"
