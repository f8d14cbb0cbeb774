"""``pushcamp demo``: the whole product in one command, for a person trying it.

It starts the push-service simulator (in this process) and ``pushcamp serve`` (a child
process) on a fresh SQLite file in a temporary directory, creates a demo partner with a
few thousand simulated subscribers, launches a campaign over the HTTP API as an
integration would, follows it with a progress bar, and prints the statistics and the
panel's address. With ``browser=True`` a real headless Firefox (Debian's ``firefox-esr``)
subscribes through the SDK on the demo page first and the notification it showed is
printed.

Output: what a person reads (progress, results, links) goes to the console; the
server's log and the demo's own log events go to stderr as readable lines on a terminal,
JSON lines otherwise or with ``PUSHCAMP_LOG_JSON=true``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pushcamp import logs
from pushcamp.settings import Settings

PARTNER_ID = "100000001"
T = TypeVar("T")


class DemoFailed(RuntimeError):
    """Something the demo needs did not happen (the message says what)."""


@dataclass(frozen=True)
class DemoResult:
    partner_id: str
    campaign_id: int
    launch: dict[str, Any]
    metrics: dict[str, Any]
    panel_url: str
    notification: dict[str, Any] | None  # what Firefox showed (browser demos)
    ack_code: int | None


def _wait(probe: Callable[[], T | None], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="pushcamp-demo-") as name:
        yield Path(name)


def run_demo(
    console: Console,
    *,
    subscribers: int = 3000,
    browser: bool = False,
    port: int = 0,
    workdir: Path | None = None,
    wait_for_exit: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo; ``wait_for_exit(panel_url)`` is called before everything stops (the
    CLI waits for Ctrl-C there)."""
    from pushcamp.services import importer, partners, tokens
    from pushcamp.store import Database
    from pushcamp.testing.process import ServerProcess
    from pushcamp.testing.simulator import PushServiceSimulator

    json_logs = logs.wants_json(Settings().log_json)
    logs.configure("INFO", json_logs)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its every request is noise here
    log = logs.get_logger("pushcamp.demo")

    with ExitStack() as stack:
        work = stack.enter_context(_workdir(workdir))
        database_url = f"sqlite:///{work / 'demo.db'}"
        sim = stack.enter_context(PushServiceSimulator())
        log.info("demo.simulator_started", url=sim.url)

        settings = Settings(database_url=database_url, push_allowed_hosts="127.0.0.1")
        db = Database(settings)
        stack.callback(db.dispose)
        db.migrate()
        partners.create_partner(db, PARTNER_ID, "Demo shop", 10_000, 10_000)
        token = tokens.create_token(db, PARTNER_ID)
        key = partners.vapid_public_key(db, PARTNER_ID)
        log.info("demo.partner_created", partner=PARTNER_ID)

        # Simulated subscribers: subscriptions the simulator issued for the partner's key,
        # imported the way an operator moves from another system.
        lines = work / "subscribers.jsonl"
        with lines.open("w", encoding="utf-8") as out:
            import json

            for n in range(subscribers):
                sub = sim.subscribe(key).to_json()
                language = ("en-US", "tr", "de-DE", "fr-FR")[n % 4]
                out.write(
                    json.dumps(
                        {"endpoint": sub["endpoint"], "keys": sub["keys"], "language": language}
                    )
                    + "\n"
                )
        with lines.open("rb") as source:
            summary = importer.import_subscriptions(db, PARTNER_ID, source)
        log.info("demo.subscribers_imported", count=summary.imported)

        env = {
            "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "PUSHCAMP_LOG_JSON": "true" if json_logs else "false",
        }
        server = ServerProcess(
            database_url,
            work / "server.log",
            env=env,
            port=port,
            on_log_line=lambda line: console.print(escape(line), highlight=False, soft_wrap=True),
        )
        stack.enter_context(server)
        log.info("demo.server_started", url=server.url)
        client = stack.enter_context(httpx.Client(base_url=server.url, timeout=30))
        auth = {"Authorization": f"Bearer {token}"}

        endpoint: str | None = None
        if browser:
            endpoint = _firefox_subscribes(stack, console, sim, server.url, work, log)

        title = "Summer sale"
        body = "Everything 20% off until Sunday"
        created = client.post(
            "/v1/single",
            json={"partner_id": PARTNER_ID, "title": title, "language": "all_ALL", "is_all": True},
            headers=auth,
        )
        if created.status_code != 201:
            raise DemoFailed(f"creating the campaign: HTTP {created.status_code} {created.text}")
        campaign_id = int(created.json()["campaign_id"])
        launched = client.post(
            f"/v1/single/{campaign_id}",
            json={
                "partner_id": PARTNER_ID,
                "title": title,
                "description": body,
                "link": "https://shop.example/sale",
                "ttl": 3600,
                "include_unengaged": True,
            },
            headers=auth,
        )
        if launched.status_code != 200:
            raise DemoFailed(f"launching: HTTP {launched.status_code} {launched.text}")
        log.info("demo.launched", campaign=campaign_id)
        launch = _follow(console, client, auth, campaign_id)

        notification: dict[str, Any] | None = None
        ack_code: int | None = None
        if endpoint is not None:
            report = _wait(
                lambda: _page_report(sim, lambda r: bool(r.get("notifications"))),
                "Firefox to show the notification",
                30,
            )
            notification = report["notifications"][0]
            acks = _wait(lambda: sim.acks(endpoint), "Firefox's acknowledgement", 30)
            ack_code = acks[0].code
            _wait(
                lambda: _launch(client, auth, campaign_id)["delivered"] >= 1,
                "the worker's delivered event",
                30,
            )
            launch = _launch(client, auth, campaign_id)

        today = time.strftime("%Y-%m-%d", time.gmtime())
        metrics = client.post(
            "/v1/statistics/campaign-metrics",
            json={
                "partner_id": PARTNER_ID,
                "campaign_id": campaign_id,
                "start_date": today,
                "end_date": today,
            },
            headers=auth,
        ).json()
        panel_url = f"{server.url}/panel/login"
        result = DemoResult(
            PARTNER_ID, campaign_id, launch, metrics, panel_url, notification, ack_code
        )
        _print_result(console, result, token, server.url)
        if wait_for_exit is not None:
            wait_for_exit(panel_url)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _page_report(sim: Any, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for report in reversed(sim.page_reports()):
        if report.data.get("page") == "demo":
            return report.data if matches(report.data) else None
    return None


def _firefox_subscribes(
    stack: ExitStack, console: Console, sim: Any, base: str, work: Path, log: Any
) -> str:
    """A headless Firefox subscribes on the demo page; returns its endpoint."""
    from urllib.parse import quote

    from pushcamp.testing.firefox import HeadlessFirefox, find_firefox

    if find_firefox() is None:
        raise DemoFailed("--browser needs Firefox (Debian: apt-get install firefox-esr)")
    firefox = stack.enter_context(
        HeadlessFirefox(
            sim.push_server_url, profile_dir=work / "firefox", log_path=work / "firefox.log"
        )
    )
    sim.ask_page("subscribe")
    demo = f"{base}/demo/{PARTNER_ID}?report={quote(sim.reports_url, safe='')}"
    with console.status("headless Firefox is subscribing on the demo page…"):
        firefox.open(sim.gate_url(demo))
        report = _wait(
            lambda: _page_report(
                sim,
                lambda r: (
                    bool(r.get("subscribed") and r.get("endpoint"))
                    or str(r.get("outcome", "")).startswith("error")
                ),
            ),
            "Firefox to subscribe",
            60,
        )
    if not report.get("subscribed"):
        raise DemoFailed(f"Firefox could not subscribe: {report.get('log')}")
    endpoint = str(report["endpoint"])
    log.info("demo.firefox_subscribed", endpoint=endpoint)
    console.print(f"[green]Firefox subscribed[/] through the SDK: {escape(endpoint)}")
    return endpoint


def _launch(client: httpx.Client, auth: dict[str, str], campaign_id: int) -> dict[str, Any]:
    answer = client.get(f"/v1/single/{campaign_id}", headers=auth)
    answer.raise_for_status()
    launches: list[dict[str, Any]] = answer.json()["launches"]
    return launches[-1] if launches else {}


def _follow(
    console: Console, client: httpx.Client, auth: dict[str, str], campaign_id: int
) -> dict[str, Any]:
    columns = (
        TextColumn("launch"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn(
            "{task.fields[status]}: sent {task.fields[sent]:,} dropped {task.fields[dropped]:,}"
        ),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + 300
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("launch", total=1, status="", sent=0, dropped=0)
        while True:
            launch = _launch(client, auth, campaign_id)
            total = launch.get("batches_total") or 0
            progress.update(
                task,
                total=max(total, 1),
                completed=launch.get("batches_done", 0) if total else 0,
                status=launch.get("status", ""),
                sent=launch.get("sent", 0),
                dropped=launch.get("dropped", 0),
            )
            if launch.get("status") in ("Sent", "Paused", "Stopped", "Failed"):
                progress.update(task, completed=max(total, 1))
                return launch
            if time.monotonic() > deadline:
                raise DemoFailed("the launch did not end within 5 minutes")
            time.sleep(0.3)


def _print_result(console: Console, result: DemoResult, token: str, base: str) -> None:
    overview = result.metrics.get("overview", {})
    table = Table(title=f"campaign {result.campaign_id}: statistics (campaign-metrics)")
    table.add_column("")
    table.add_column("", justify="right")
    total = overview.get("total", {})
    rows = [
        ("targeted", total.get("targeted")),
        ("sent", overview.get("targeted", {}).get("sent")),
        ("dropped", overview.get("targeted", {}).get("dropped")),
        (
            "delivered (reported by a service worker)",
            overview.get("deliveryRate", {}).get("delivered"),
        ),
        ("delivery rate", total.get("deliveryRate")),
        ("clicks", overview.get("ctr", {}).get("clicks")),
    ]
    for name, value in rows:
        table.add_row(name, str(value if value is not None else "-"))
    console.print(table)
    if result.notification is not None:
        console.print(
            f"[green]Firefox showed the notification[/] (ack code {result.ack_code}): "
            f"[bold]{escape(str(result.notification.get('title')))}[/] — "
            f"{escape(str(result.notification.get('body')))}"
        )
    console.print(f"Panel: {result.panel_url}  (sign in with the token below)")
    console.print(f"Token: {token}", highlight=False)
    console.print(f"Demo page: {base}/demo/{result.partner_id}")


def default_workdir() -> Path | None:
    """``PUSHCAMP_DEMO_DIR``, if set, keeps the demo's files (database, logs, Firefox
    profile) there instead of a temporary directory."""
    value = os.environ.get("PUSHCAMP_DEMO_DIR")
    return Path(value) if value else None
