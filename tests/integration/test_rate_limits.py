"""Per-partner, per-endpoint budgets with headers on every authenticated response."""

from __future__ import annotations

import time

import httpx

from tests.conftest import Tenant, run_cli


def create(client: httpx.Client, tenant: Tenant, title: str) -> httpx.Response:
    return client.post(
        "/v1/single", json=tenant.body(title=title, language="en_US"), headers=tenant.auth
    )


def test_default_budget_is_30_per_minute_then_429(client: httpx.Client, make_tenant) -> None:
    tenant = make_tenant()  # default limits
    responses = [create(client, tenant, f"t{i}") for i in range(31)]
    assert [r.status_code for r in responses[:30]] == [201] * 30
    first = responses[0].headers
    assert first["x-ratelimit-limit"] == "30"
    assert first["x-ratelimit-remaining"] == "29"
    assert int(first["x-ratelimit-reset"]) >= 1
    assert first["ratelimit-policy"] == '"create";q=30;w=60'
    assert first["ratelimit"].startswith('"create";r=29;t=')
    limited = responses[30]
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Requests", "status": 429}
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert limited.headers["x-ratelimit-remaining"] == "0"


def test_each_endpoint_has_its_own_budget_and_partners_are_independent(
    client: httpx.Client, make_tenant
) -> None:
    tenant = make_tenant(v1_limit=2)
    assert [create(client, tenant, f"x{i}").status_code for i in range(3)] == [201, 201, 429]
    # Delete has its own budget, untouched by the creates.
    r = client.request("DELETE", "/v1/single/999999999", json=tenant.body(), headers=tenant.auth)
    assert r.status_code == 400 and r.headers["x-ratelimit-limit"] == "2"
    assert r.headers["ratelimit-policy"].startswith('"delete"')
    # Launch v2 runs on the v2 budget.
    r = client.post("/v2/single/campaign_id", json=tenant.body(), headers=tenant.auth)
    assert r.headers["x-ratelimit-limit"] == "6000"
    other = make_tenant(v1_limit=2)
    assert create(client, other, "x0").status_code == 201


def test_errors_after_authentication_carry_rate_headers(
    client: httpx.Client, tenant: Tenant
) -> None:
    r = client.post("/v1/single", content=b"{", headers=tenant.auth)
    assert r.status_code == 400 and "x-ratelimit-remaining" in r.headers


def test_set_limits_takes_effect_on_the_running_server(
    client: httpx.Client, make_tenant, database_url: str
) -> None:
    tenant = make_tenant(v1_limit=1)
    assert create(client, tenant, "a").status_code == 201
    assert create(client, tenant, "b").status_code == 429
    run_cli(
        "partners", "set-limits", tenant.partner_id, "--v1-limit", "1000", database_url=database_url
    )
    # A running server trusts what it read about a token for up to 2 s (auth cache).
    deadline = time.monotonic() + 4
    while True:
        r = create(client, tenant, f"c{time.monotonic()}")
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201 and r.headers["x-ratelimit-limit"] == "1000"
