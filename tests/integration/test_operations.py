"""§6: liveness, readiness, the API description, metrics, and logs without secrets."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Tenant


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"


def test_openapi_describes_create_with_its_body_and_errors(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["paths"]["/v1/single"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"partner_id", "title", "language"}
    assert {"201", "400", "401", "424", "429"} <= set(create["responses"])
    assert "422" not in create["responses"]
    assert create["security"] == [{"apiToken": []}]
    assert "/v1/single/{campaign_id}" in spec["paths"]


def test_docs_page_is_served(client: httpx.Client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


def test_unknown_route_and_method_are_json(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    r = client.put("/v1/single")
    assert r.status_code == 405 and r.json() == {"message": "Method Not Allowed"}


def test_metrics_count_requests_by_route(client: httpx.Client, tenant: Tenant) -> None:
    client.post("/v1/single", json=tenant.body(title="m", language="en_US"), headers=tenant.auth)
    text = client.get("/metrics").text
    assert 'pushcamp_http_requests_total{method="POST",route="/v1/single",status="201"}' in text


def test_logs_are_json_lines_without_tokens_or_keys(
    client: httpx.Client, tenant: Tenant, server_log: Path
) -> None:
    import json

    client.post(
        "/v1/single", json=tenant.body(title="logged", language="en_US"), headers=tenant.auth
    )
    client.post("/v1/single", content=b"{", headers={"Authorization": tenant.token})
    lines = server_log.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(
        e.get("event") == "request" and e.get("partner") == tenant.partner_id for e in events
    )
    text = server_log.read_text()
    assert tenant.token not in text
    # The secret after "pc_<prefix>_", whole: it is URL-safe base64 and may hold "_" itself.
    assert tenant.token.split("_", 2)[2] not in text
