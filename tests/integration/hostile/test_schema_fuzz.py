"""Schema-driven fuzzing (schemathesis) of every endpoint in ``/openapi.json`` against
the real server process: never a 5xx, never a 422, every status and body the schema
declares, and ``Allow`` on a 405 naming the methods the path really has.

Fixed seed, a bounded number of examples per operation; a valid token is sent, and half
of the examples name the token's own partner so that they reach past the 401."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import allow_header_conformance, unsupported_method

from pushcamp.api.cors import PUBLIC_PATHS
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.conftest import Tenant

MAX_EXAMPLES = 40
SEED = 20240611

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    allow_header_conformance,
    unsupported_method,
]
# Operations whose schema states every rule their input must meet, so that a
# schema-valid request is never refused (400) there. Elsewhere some rules cannot be said
# in JSON Schema (a subscription's key must be a P-256 point, an event token must carry
# a valid signature, a title must be unique, and the contract answers an unknown
# campaign id with a 400) and their 400s name the field instead.
FULLY_DESCRIBED = {"GET /healthz", "GET /readyz", "GET /sdk/{partner_id}/config"}


def no_422(ctx: Any, response: Any, case: Any) -> bool | None:
    assert response.status_code != 422, f"422 for {case.method} {case.formatted_path}"
    return None


def own_partner(case: Any, tenant: Tenant, campaign_id: int) -> None:
    """Point a case at the token's partner (bodies and paths that name one) and, except
    for a delete, at one of its real campaigns."""
    if isinstance(case.body, dict) and "partner_id" in case.body:
        case.body["partner_id"] = tenant.partner_id
    if case.path_parameters and "partner_id" in case.path_parameters:
        case.path_parameters["partner_id"] = tenant.partner_id
    path = case.path_parameters or {}
    if "campaign_id" in path and case.method.upper() != "DELETE":
        path["campaign_id"] = campaign_id


@pytest.fixture(scope="module")
def fuzz_tenant(db: Database) -> Tenant:
    # Budgets large enough that the fuzzer never meets a 429 it could not explain.
    return Tenant(db, v1_limit=1_000_000, v2_limit=1_000_000)


def fuzz(
    operation: Any, checks: list[Any], tenant: Tenant, campaign_id: int, seen: dict[str, int]
) -> None:
    """Run one operation's examples; raise what schemathesis found."""

    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), own=st.booleans())
    def run(case: Any, own: bool) -> None:
        if own:
            own_partner(case, tenant, campaign_id)
        response = case.call_and_validate(
            headers=tenant.auth, checks=checks, additional_checks=[no_422], timeout=15
        )
        key = f"{case.method} {case.path} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1

    run()


def test_every_operation_survives_the_fuzzer(server: ServerProcess, fuzz_tenant: Tenant) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    created = httpx.post(
        server.url + "/v1/single",
        headers=fuzz_tenant.auth,
        json=fuzz_tenant.body(title="fuzzed", language="all_ALL", is_all=False),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    failures: list[str] = []
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        label = f"{operation.method.upper()} {operation.path}"
        checks = [*CHECKS, positive_data_acceptance] if label in FULLY_DESCRIBED else CHECKS
        try:
            fuzz(operation, checks, fuzz_tenant, campaign_id, seen)
        except (Exception, BaseExceptionGroup) as exc:  # asserted below, in this thread
            failures.append(f"{label}: {exc}"[:3000])
    print("\n".join(f"{key}: {count}" for key, count in sorted(seen.items())))
    assert failures == [], "\n\n".join(failures)
    # Every operation was reached, and ran its examples.
    operations = {key.rsplit(" ", 1)[0] for key in seen}
    assert len(operations) >= 14


def test_a_405_names_every_method_the_path_has(server: ServerProcess) -> None:
    """For each path of the schema, a method it does not serve gets 405 with an ``Allow``
    listing every method it does (those in the schema, and the CORS preflight's OPTIONS
    on the public endpoints)."""
    document = httpx.get(server.url + "/openapi.json", timeout=10).json()
    for path, item in document["paths"].items():
        declared = {method.upper() for method in item}
        if path in PUBLIC_PATHS:
            declared.add("OPTIONS")
        concrete = path.replace("{campaign_id}", "1").replace("{partner_id}", "100000001")
        response = httpx.request("PATCH", server.url + concrete, timeout=10)
        assert response.status_code == 405, path
        allow = {m.strip() for m in response.headers["allow"].split(",")}
        assert allow == declared, path
        assert response.json() == {"message": "Method Not Allowed"}


def test_the_schema_states_ids_patterns_and_no_422(server: ServerProcess) -> None:
    document = httpx.get(server.url + "/openapi.json", timeout=10).json()
    params = {}
    for item in document["paths"].values():
        for operation in item.values():
            assert "422" not in operation["responses"]
            for parameter in operation.get("parameters", []):
                params[parameter["name"]] = parameter["schema"]
    assert params["campaign_id"] == {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}
    assert params["partner_id"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
    create = document["paths"]["/v1/single"]["post"]["requestBody"]["content"]
    body = create["application/json"]["schema"]
    assert body["properties"]["partner_id"]["pattern"] == params["partner_id"]["pattern"]
