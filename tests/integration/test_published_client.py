"""The published Postman collection, unmodified, run by newman against pushcamp: a back
end written against Insider's API must work by changing only the base URL and key."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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


# --- the three statistics requests --------------------------------------------------------

STATISTICS = {
    "Get web push campaign metrics analytics": "campaign-metrics",
    "Get web push overall metrics analytics": "overall-metrics",
    "Get web push top metrics analytics": "top-metrics",
}
# Keys of the published samples that name Insider features pushcamp does not have
# (docs/statistics.md): conversion goals, personalization, the campaign builder.
LEFT_OUT = {
    "campaign-metrics": {"primaryGoal", "goalMenu", "personalizationStatus"},
    "overall-metrics": {"data[].builderId"},
    "top-metrics": set(),
}
# The collection's date range; the records below fall inside it.
SAMPLE_DAY = datetime(2023, 6, 5, 12, 0, tzinfo=UTC)


def published_sample(collection: dict, name: str) -> Any:
    """The 200 answer the collection documents for ``name`` (in its description text)."""
    for folder in collection["item"]:
        for item in folder.get("item", []):
            if item["name"] == name:
                text = item["request"]["description"]["content"]
                start = text.index("{", text.index("200 OK"))
                return json.JSONDecoder().raw_decode(text, start)[0]
    raise KeyError(name)


def leaf_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def shape_differences(sample: Any, answer: Any, path: str = "") -> set[str]:
    """Where ``answer``'s key structure differs from ``sample``'s, recursively: keys the
    sample has and the answer lacks (``-path``), keys the answer adds (``+path``), and
    JSON types that differ (``path: sample type != answer type``). List items are
    compared by the union of their keys."""
    if isinstance(sample, dict) and isinstance(answer, dict):
        out = {f"-{path}{k}" for k in sample.keys() - answer.keys()}
        out |= {f"+{path}{k}" for k in answer.keys() - sample.keys()}
        for key in sample.keys() & answer.keys():
            out |= shape_differences(sample[key], answer[key], f"{path}{key}.")
        return out
    if isinstance(sample, list) and isinstance(answer, list):
        if not sample or not answer:
            return set()
        return shape_differences(merged(sample), merged(answer), f"{path[:-1]}[].")
    if leaf_type(sample) != leaf_type(answer):
        return {f"{path[:-1]}: {leaf_type(sample)} != {leaf_type(answer)}"}
    return set()


def merged(items: list) -> Any:
    if all(isinstance(item, dict) for item in items):
        union: dict = {}
        for item in items:
            union.update(item)
        return union
    return items[0]


@pytest.fixture(scope="module")
def stats_run(server: ServerProcess, db: Database, tmp_path_factory) -> dict:
    """The collection with the statistics bodies' ``partner_id`` and ``campaign_id`` made
    a real partner's and a real campaign's (nothing else changed: dates, page, per_page
    stay the published strings), run by newman after that campaign recorded outcomes on
    one of the collection's days: sends and drops on two devices, delivered and clicked
    reports, a conversion; and a second, segment campaign."""
    from sqlalchemy import insert

    from pushcamp.store.models import Campaign, Conversion, Delivery, Event, Launch
    from pushcamp.store.statistics import recount_launch
    from tests.conftest import Tenant

    exe = newman()
    if exe is None or not COLLECTION.exists():
        if os.environ.get("CI"):
            pytest.fail("newman or the published collection is missing in CI")
        pytest.skip("newman (npm) or ../shared/reference is not available")
    tenant = Tenant(db, v1_limit=1000)
    pid = tenant.partner_id
    campaign_ids = []
    with db.write() as conn:
        for n, is_all in enumerate((True, False)):
            at = SAMPLE_DAY + timedelta(hours=n)
            cid = conn.execute(
                insert(Campaign)
                .values(
                    partner_id=pid,
                    title=f"sample {n}",
                    language="all_ALL",
                    is_all=is_all,
                    status="Sent",
                    created_at=at,
                    updated_at=at,
                )
                .returning(Campaign.id)
            ).scalar_one()
            lid = conn.execute(
                insert(Launch)
                .values(
                    partner_id=pid,
                    campaign_id=cid,
                    once=is_all,
                    status="Sent",
                    request={
                        "ttl": 3600,
                        "link": "https://shop.example/sale",
                        "title": "t",
                        # The bulk campaign's notification has one action button.
                        "actions": [{"title": "Buy", "link": "https://shop.example/buy"}]
                        if is_all
                        else [],
                    },
                    topic="-",
                    created_at=at,
                    started_at=at,
                    finished_at=at + timedelta(minutes=5),
                )
                .returning(Launch.id)
            ).scalar_one()
            conn.execute(
                insert(Delivery),
                [
                    {
                        "launch_id": lid,
                        "subscriber_id": i,
                        "partner_id": pid,
                        "state": "dropped" if i % 5 == 0 else "sent",
                        "reason": "unsubscriptions" if i % 5 == 0 else None,
                        "device": ("desktop", "mobile")[i % 2],
                        "created_at": at,
                    }
                    for i in range(1, 21)
                ],
            )
            conn.execute(
                insert(Event),
                [
                    {
                        "partner_id": pid,
                        "launch_id": lid,
                        "subscriber_id": i,
                        "type": kind,
                        "created_at": at + timedelta(minutes=1),
                    }
                    for i in range(1, 9)
                    for kind in (("delivered", "clicked") if i < 3 else ("delivered",))
                ],
            )
            conn.execute(
                insert(Conversion).values(
                    partner_id=pid,
                    launch_id=lid,
                    subscriber_id=1,
                    value=Decimal("19.99"),
                    currency="USD",
                    created_at=at + timedelta(minutes=2),
                )
            )
            recount_launch(conn, lid)
            campaign_ids.append(cid)
    collection = json.loads(COLLECTION.read_text())
    samples = {name: published_sample(collection, name) for name in STATISTICS}
    for folder in collection["item"]:
        for item in folder.get("item", []):
            if item["name"] in STATISTICS:
                body = json.loads(item["request"]["body"]["raw"])
                body["partner_id"] = pid
                if "campaign_id" in body:
                    body["campaign_id"] = str(campaign_ids[0])
                item["request"]["body"]["raw"] = json.dumps(body)
    copy = tmp_path_factory.mktemp("statistics") / "with-partner.json"
    copy.write_text(json.dumps(collection))
    answers = run_newman(exe, copy, server.url, tenant.token, copy.parent)
    return {"answers": answers, "samples": samples}


@pytest.mark.parametrize("name", list(STATISTICS))
def test_statistics_requests_answer_in_the_published_shape(stats_run: dict, name: str) -> None:
    code, raw = stats_run["answers"][name]
    assert code == 200, raw
    answer = json.loads(raw)
    sample = stats_run["samples"][name]
    # Every list the sample fills is filled here too, so its items are compared.
    for key in ("deviceMetrics", "clickMetrics", "data", "performance", "dropped"):
        if key in sample:
            assert answer[key], key
    if "unsuccessfulMessages" in sample:
        assert all(answer["unsuccessfulMessages"].values())
    left_out = {f"-{key}" for key in LEFT_OUT[STATISTICS[name]]}
    assert shape_differences(sample, answer) == left_out


def test_statistics_requests_count_what_was_recorded(stats_run: dict) -> None:
    """The published bodies (dates and page as strings) select the recorded day."""
    answers = {
        STATISTICS[n]: json.loads(raw)
        for n, (_, raw) in stats_run["answers"].items()
        if n in STATISTICS
    }
    campaign = answers["campaign-metrics"]
    assert campaign["overview"]["targeted"] == {"sent": "16", "dropped": "4"}
    assert campaign["overview"]["deliveryRate"]["delivered"] == "8"
    assert campaign["overview"]["revenue"] == "20 USD"
    overall = answers["overall-metrics"]
    assert (overall["page"], overall["per_page"], overall["total"]) == (1, 100, 2)
    assert [row["daysActive"] for row in overall["data"]] == [1, 1]
    links = [(row["firstButtonLink"], row["secondButtonLink"]) for row in overall["data"]]
    assert links == [("N/A", "N/A"), ("https://shop.example/buy", "N/A")]  # newest first
    top = answers["top-metrics"]
    assert top["overview"]["targeted"] == {"sent": "32", "dropped": "8"}
    assert [(p["label"], p["campaignCount"]) for p in top["performance"]] == [
        ("Bulk", 1),
        ("Segment", 1),
    ]
