"""The published Postman collection, unmodified, run by newman against pushcamp: a back
end written against Insider's API must work by changing only the base URL and key."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pushcamp.errors import Conflict
from pushcamp.services import partners, tokens
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT.parent / "shared" / "reference" / "insider-web-push.postman_collection.json"
COLLECTION_PARTNER = "100XXXXX"  # the partner_id the collection's Create request sends


def newman() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "newman"
    return str(local) if local.exists() else shutil.which("newman")


def run_newman(exe: str, collection: Path, base_url: str, token: str, workdir: Path) -> dict:
    """Run ``collection`` with newman against ``base_url``; each request's name mapped to
    its (status, body)."""
    report = workdir / "report.json"
    result = subprocess.run(
        [
            exe,
            "run",
            str(collection),
            "--env-var",
            f"baseUrl={base_url}",
            "--env-var",
            f"apiKey={token}",
            "--reporters",
            "json",
            "--reporter-json-export",
            str(report),
            "--timeout-request",
            "10000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), result.stdout + result.stderr
    executions = json.loads(report.read_text())["run"]["executions"]
    return {
        e["item"]["name"]: (e["response"]["code"], bytes(e["response"]["stream"]["data"]))
        for e in executions
    }


@pytest.fixture(scope="module")
def collection_run(server: ServerProcess, db: Database, tmp_path_factory) -> dict:
    exe = newman()
    if exe is None or not COLLECTION.exists():
        if os.environ.get("CI"):
            pytest.fail("newman or the published collection is missing in CI")
        pytest.skip("newman (npm) or ../shared/reference is not available")
    partners.create_partner(db, COLLECTION_PARTNER, "collection")
    token = tokens.create_token(db, COLLECTION_PARTNER)
    return run_newman(exe, COLLECTION, server.url, token, tmp_path_factory.mktemp("newman"))


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


LAUNCH_PARTNER = "100000001"  # the partner_id the collection's launch and delete bodies send


@pytest.fixture(scope="module")
def real_id_run(server: ServerProcess, db: Database, tmp_path_factory) -> dict:
    """The collection with only the path's literal ``campaign_id`` replaced by real
    campaign ids (an is_all campaign each, since an is_all campaign launches once)."""
    exe = newman()
    if exe is None or not COLLECTION.exists():
        pytest.skip("newman (npm) or ../shared/reference is not available")
    import httpx

    with contextlib.suppress(Conflict):  # created by an earlier test of this session
        partners.create_partner(db, LAUNCH_PARTNER, "collection launches")
    token = tokens.create_token(db, LAUNCH_PARTNER)
    ids: dict[str, int] = {}
    with httpx.Client(base_url=server.url, headers={"Authorization": token}) as c:
        for name in (
            "Launch single web pushes v1",
            "Launch single web pushes v2",
            "Delete single web pushes",
        ):
            body = {
                "partner_id": LAUNCH_PARTNER,
                "title": f"{name} {token[-6:]}",
                "language": "tr_TR",
                "is_all": True,
            }
            created = c.post("/v1/single", json=body)
            assert created.status_code == 201, created.text
            ids[name] = created.json()["campaign_id"]
    collection = json.loads(COLLECTION.read_text())

    def substitute(items: list) -> None:
        for item in items:
            if "item" in item:
                substitute(item["item"])
            elif item["name"] in ids:
                url = item["request"]["url"]
                real = str(ids[item["name"]])
                url["path"] = [real if p == "campaign_id" else p for p in url["path"]]
                if "raw" in url:
                    url["raw"] = url["raw"].replace("campaign_id", str(ids[item["name"]]))

    substitute(collection["item"])
    copy = tmp_path_factory.mktemp("collection") / "with-ids.json"
    copy.write_text(json.dumps(collection))
    return run_newman(exe, copy, server.url, token, copy.parent) | {"ids": ids}


@pytest.mark.parametrize("name", ["Launch single web pushes v1", "Launch single web pushes v2"])
def test_launch_requests_with_a_real_id_succeed_as_published(real_id_run: dict, name: str) -> None:
    code, body = real_id_run[name]
    assert code == 200, body
    assert json.loads(body) == {"success": True, "campaign_id": real_id_run["ids"][name]}


def test_delete_request_with_a_real_id_gets_400_for_its_trailing_comma(real_id_run: dict) -> None:
    code, body = real_id_run["Delete single web pushes"]
    assert code == 400, body
    assert json.loads(body)["message"] == "Bad Request"
