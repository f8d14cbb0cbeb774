"""The published Postman collection, unmodified, run by newman against pushcamp: a back
end written against Insider's API must work by changing only the base URL and key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pushcamp.services import partners, tokens
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT.parent / "shared" / "reference" / "insider-web-push.postman_collection.json"
COLLECTION_PARTNER = "100XXXXX"  # the partner_id the collection's Create request sends


def newman() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "newman"
    return str(local) if local.exists() else shutil.which("newman")


@pytest.fixture(scope="module")
def collection_run(server: ServerProcess, db: Database, tmp_path_factory) -> dict:
    exe = newman()
    if exe is None or not COLLECTION.exists():
        if os.environ.get("CI"):
            pytest.fail("newman or the published collection is missing in CI")
        pytest.skip("newman (npm) or ../shared/reference is not available")
    partners.create_partner(db, COLLECTION_PARTNER, "collection")
    token = tokens.create_token(db, COLLECTION_PARTNER)
    report = tmp_path_factory.mktemp("newman") / "report.json"
    result = subprocess.run(
        [exe, "run", str(COLLECTION), "--env-var", f"baseUrl={server.url}",
         "--env-var", f"apiKey={token}", "--reporters", "json",
         "--reporter-json-export", str(report), "--timeout-request", "10000"],
        capture_output=True, text=True, timeout=120,
    )
    assert report.exists(), result.stdout + result.stderr
    executions = json.loads(report.read_text())["run"]["executions"]
    return {
        e["item"]["name"]: (e["response"]["code"], bytes(e["response"]["stream"]["data"]))
        for e in executions
    }


def test_create_request_gets_201(collection_run: dict) -> None:
    code, body = collection_run["Create single web pushes"]
    assert code == 201, body
    payload = json.loads(body)
    assert payload["success"] is True and isinstance(payload["campaign_id"], int)


@pytest.mark.parametrize(
    "name",
    ["Launch single web pushes v1", "Launch single web pushes v2", "Delete single web pushes"],
)
def test_requests_with_literal_campaign_id_get_documented_400(
    collection_run: dict, name: str
) -> None:
    code, body = collection_run[name]
    assert code == 400, body
    assert json.loads(body)["message"] == "Bad Request"


def test_no_request_of_the_collection_gets_422_or_500(collection_run: dict) -> None:
    assert len(collection_run) == 7
    assert not {code for code, _ in collection_run.values()} & {422, 500}
