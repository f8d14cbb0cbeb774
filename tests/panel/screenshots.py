"""Make the panel screenshots of the README and docs/panel.md from a realistic shop.

    .venv/bin/python -m tests.panel.screenshots docs/img      # about 8 minutes
    .venv/bin/python -m tests.panel.screenshots docs/img --db shop.db   # keep the shop;
                                         # later runs with the same file only take pictures

Everything is real: a fresh SQLite database, ``pushcamp serve`` in a child process, the
push-service simulator, Debian's Chromium. "My shop" has about 420 subscribers who
subscribed over the last four weeks (their creation times are set through the store, as
an import of old subscriptions would); its "Summer sale" is launched to all of them. The
simulator answers like real push services do: most messages at once, some after one to
three 503s with Retry-After (so the sends spread over a few minutes), a few 410 (gone)
and 404. The script then plays the subscribers' service workers and pages: most report
``delivered`` within minutes (the others stay offline), some click, a few buy (conversion
events with the push's token). Those events arrive over several minutes, in real time,
so the delivery chart has a shape. Other campaigns (one launched to the German
subscribers, two drafts) fill the listing.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import text

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.services import partners, sites, statistics, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import subscribers as subs_q
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator, SimulatedSubscription
from tests.panel.conftest import CHROMIUM_ARGS, chromium_path

PARTNER = "100000001"
LANGUAGES = [("en_US", 45), ("de_DE", 20), ("fr_FR", 15), ("tr_TR", 12), ("es_ES", 8)]
# (browser, os, device, weight): what the SDK's User-Agent parsing stores.
CLIENTS = [
    ("Chrome", "Windows", "desktop", 30),
    ("Chrome Mobile", "Android", "mobile", 22),
    ("Firefox", "Windows", "desktop", 10),
    ("Edge", "Windows", "desktop", 10),
    ("Safari", "Mac OS X", "desktop", 8),
    ("Mobile Safari", "iOS", "mobile", 8),
    ("Firefox", "Linux", "desktop", 4),
    ("Samsung Internet", "Android", "mobile", 5),
    ("Chrome", "Android", "tablet", 3),
]
DAYS = 26
ENV = {"PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1", "PUSHCAMP_PUBLIC_PER_IP_LIMIT": "100000"}
SHOOT_ENV = {"PUSHCAMP_PUBLIC_URL": "https://push.shop.example"}


def pick(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


@dataclass
class Subscriber:
    sub: SimulatedSubscription
    language: str


def audience(db: Database, sim: PushServiceSimulator, rng: random.Random) -> list[Subscriber]:
    """Subscribers made day by day over the last DAYS days, more each week."""
    key = partners.vapid_public_key(db, PARTNER)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    made: list[Subscriber] = []
    for day in range(DAYS, -1, -1):
        count = max(2, round(6 + (DAYS - day) * 0.55 + rng.gauss(0, 3)))
        # In the day's daytime (UTC), so each day's subscriptions count on that day.
        when = min(now, midnight - timedelta(days=day, hours=-rng.uniform(8, 20)))
        rows = []
        for _ in range(count):
            s = sim.subscribe(key)
            language = pick(rng, LANGUAGES)
            browser, os_name, device, _ = rng.choices(CLIENTS, weights=[c[3] for c in CLIENTS])[0]
            engaged = when if rng.random() < 0.85 else when - timedelta(days=200)
            rows.append(
                NewSubscription(
                    endpoint=s.endpoint,
                    p256dh=s.p256dh,
                    auth=s.to_json()["keys"]["auth"],
                    language=language,
                    timezone="Europe/Berlin",
                    browser=browser,
                    os=os_name,
                    device=device,
                    last_engaged_at=engaged,
                )
            )
            made.append(Subscriber(s, language))
        with db.write() as conn:
            subs_q.upsert_subscriptions(conn, PARTNER, rows, when, imported=True)
    return made


def create(client: httpx.Client, auth: dict[str, str], title: str, language: str) -> int:
    body = {"partner_id": PARTNER, "title": title, "language": language, "is_all": True}
    answer = client.post("/v1/single", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["campaign_id"])


def launch(client: httpx.Client, auth: dict[str, str], campaign_id: int, **fields: object) -> None:
    body = {"partner_id": PARTNER, "ttl": 86400, "include_unengaged": True, **fields}
    answer = client.post(f"/v1/single/{campaign_id}", json=body, headers=auth)
    assert answer.status_code == 200, answer.text


def token_of(sim: PushServiceSimulator, sub: SimulatedSubscription, before: int) -> str | None:
    """The token of the push that arrived after the ``before`` earlier ones, if any."""
    messages = sim.messages(sub)
    return str(json.loads(messages[before].text)["token"]) if len(messages) > before else None


def play_service_workers(
    client: httpx.Client,
    sim: PushServiceSimulator,
    subs: list[Subscriber],
    rng: random.Random,
    ended: Callable[[], bool],
    pace: float = 1.0,
) -> None:
    """Report delivered, clicked and conversion events the way browsers would, over
    several minutes: each device reports its push some time after it arrives (or never,
    when it stays offline), some people click later, a few buy."""
    due: list[tuple[float, str, str]] = []  # (when, kind, token)
    seen: set[str] = set()
    before = {s.sub.endpoint: len(sim.messages(s.sub)) for s in subs}
    started = time.monotonic()
    while True:
        now = time.monotonic()
        # Read before looking at the pushes: every push of an ended launch is then seen.
        done = ended()
        for s in subs:
            if s.sub.endpoint in seen:
                continue
            token = token_of(sim, s.sub, before[s.sub.endpoint])
            if token is None:
                continue
            seen.add(s.sub.endpoint)
            if rng.random() < 0.12:
                continue  # offline for longer than the test lasts
            delivered = now + pace * min(150.0, rng.expovariate(1 / 40))
            due.append((delivered, "delivered", token))
            if rng.random() < 0.16:
                clicked = delivered + pace * min(170.0, rng.expovariate(1 / 50))
                due.append((clicked, "clicked", token))
                if rng.random() < 0.3:
                    due.append((clicked + pace * rng.uniform(20, 60), "conversion", token))
        due.sort()
        while due and due[0][0] <= now:
            _, kind, token = due.pop(0)
            body: dict[str, object] = {"type": kind, "token": token}
            if kind == "conversion":
                body.update(value=rng.choice([29.9, 49.0, 64.5, 89.0, 120.0]), currency="EUR")
            answer = client.post("/v1/events", json=body)
            assert answer.status_code in (200, 201, 204), (kind, answer.text)
        if not due and done:
            return
        if now - started > 900:
            raise SystemExit("events did not settle in 15 minutes")
        time.sleep(1.0)


def ended(client: httpx.Client, auth: dict[str, str], campaign_id: int) -> Callable[[], bool]:
    def check() -> bool:
        answer = client.get(f"/v1/single/{campaign_id}", headers=auth)
        assert answer.status_code == 200, answer.text
        status = answer.json()
        return bool(status["launches"]) and all(
            x["status"] in ("Sent", "Paused", "Stopped", "Failed") for x in status["launches"]
        )

    return check


def shoot(page: Page, path: Path, full_page: bool = True) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    print(f"{path}: {path.stat().st_size:,} bytes")


def build(url: str, workdir: Path) -> None:
    """The shop, its subscribers, its campaigns and their events, in the database at
    ``url`` (about 6 minutes: the events arrive in real time)."""
    rng = random.Random(2026)
    db = Database(Settings(database_url=url))
    db.migrate()
    # A v1 budget for this script's polling; the defaults come back before the pictures.
    partners.create_partner(db, PARTNER, "My shop", v1_limit=1000)
    sites.set_site_origins(db, PARTNER, ["https://shop.example"])
    statistics.set_conversion_settings(db, PARTNER, currency="EUR", attribution_hours=48)
    token = tokens.create_token(db, PARTNER)
    tokens.create_token(db, PARTNER)  # a second one, as for a deploy job
    auth = {"Authorization": f"Bearer {token}"}
    with (
        PushServiceSimulator(seed=5) as sim,
        ServerProcess(url, workdir / "build.log", env=ENV) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        subs = audience(db, sim, rng)
        print(f"{len(subs)} subscribers", flush=True)

        # An earlier campaign, to the German subscribers only (its events come quicker).
        german = [s for s in subs if s.language == "de_DE"]
        spring = create(client, auth, "Frühlingskollektion", "de_DE")
        launch(
            client,
            auth,
            spring,
            title="Die Frühlingskollektion ist da",
            description="Leichte Jacken und Sneaker, jetzt online.",
            link="https://shop.example/de/fruehling",
        )
        play_service_workers(
            client, sim, german, random.Random(1), ended(client, auth, spring), pace=0.1
        )
        print("Frühlingskollektion done", flush=True)

        summer = create(client, auth, "Summer sale", "all_ALL")
        for s in subs:
            roll = rng.random()
            if roll < 0.05:
                sim.inject(s.sub, Fault.gone())
            elif roll < 0.07:
                sim.inject(s.sub, Fault.not_found())
            elif roll < 0.30:
                retries = rng.choice([1, 1, 1, 2, 2, 3])
                seconds = rng.choice([25, 40, 55])
                sim.inject(s.sub, Fault.unavailable(retry_after=seconds), times=retries)
        launch(
            client,
            auth,
            summer,
            title="Summer sale: up to 40% off",
            description="Linen, sandals and swimwear. Ends Sunday at midnight.",
            link="https://shop.example/summer-sale",
        )
        play_service_workers(client, sim, subs, rng, ended(client, auth, summer))
        print("Summer sale done", flush=True)
        create(client, auth, "Back to school", "en_US")
        create(client, auth, "Autumn preview", "all_ALL")
    partners.set_limits(db, PARTNER, v1_limit=Settings().default_v1_limit)
    db.dispose()


def shoot_all(url: str, workdir: Path, out: Path) -> None:
    """The pictures, at desktop and phone width, signed in with a token made for them."""
    db = Database(Settings(database_url=url))
    token = tokens.create_token(db, PARTNER)
    with (
        # Default limits, and the address a shop's pages would use in the SDK snippet.
        ServerProcess(url, workdir / "shoot.log", env=SHOOT_ENV) as server,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        with db.read() as conn:
            summer = conn.execute(
                text("SELECT id FROM campaigns WHERE partner_id = :p AND title = 'Summer sale'"),
                {"p": PARTNER},
            ).scalar_one()
        for width, prefix in ((1280, "panel-"), (390, "panel-phone-")):
            context = browser.new_context(
                base_url=server.url, viewport={"width": width, "height": 900}
            )
            page = context.new_page()
            page.goto("/panel/login")
            if width == 1280:
                shoot(page, out / "panel-login.png", full_page=False)
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_url("**/panel/campaigns")
            shoot(page, out / f"{prefix}listing.png")
            page.goto(f"/panel/campaigns/{summer}")
            shoot(page, out / f"{prefix}campaign.png")
            if width == 1280:
                page.goto("/panel/subscribers")
                shoot(page, out / "panel-subscribers.png")
                page.goto("/panel/settings")
                shoot(page, out / "panel-settings.png")
            context.close()
        browser.close()
    # Gone without a trace, so that the next run's pictures show the same tokens.
    with db.write() as conn:
        conn.execute(text("DELETE FROM panel_sessions WHERE partner_id = :p"), {"p": PARTNER})
        conn.execute(text("DELETE FROM api_tokens WHERE prefix = :x"), {"x": token[3:11]})
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/img"))
    parser.add_argument(
        "--db", type=Path, help="keep the shop in this SQLite file; if it exists, only shoot"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = args.db.resolve() if args.db else workdir / "shop.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, workdir)
        shoot_all(url, workdir, args.out)


if __name__ == "__main__":
    main()
