"""A batch wider than a page is read page by page to its end: a page shorter than the
page size, or one that reaches the batch's last id, is its last (no read of an empty
page after it), and nobody before that end is left out. Launches of more than 8,000
subscribers have such batches (16 of up to 5,000 ids: store.launches.batch_span); here
the engine runs in the test with pages of 5, on a database of its own (the session's
server would otherwise claim the batch), and what arrived is decrypted with http_ece."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from pushcamp.delivery.engine import DeliveryCore, EngineOptions
from pushcamp.domain.campaigns import NewCampaign
from pushcamp.services import partners
from pushcamp.services.campaigns import create_campaign_async
from pushcamp.services.launches import launch_campaign
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import launches as launches_q
from pushcamp.store.models import Subscriber
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body, received_payload

PAGE = 5


@pytest.fixture
def own_db(tmp_path: Path, backend: str) -> Iterator[Database]:
    with fresh_database(tmp_path, "pushcamp_pages") as url:
        db = Database(Settings(database_url=url))
        db.migrate()
        try:
            yield db
        finally:
            db.dispose()


def send_everything(db: Database) -> int:
    """Run the delivery core until no batch is left; the number of batches it sent."""
    core = DeliveryCore(db, EngineOptions(page_size=PAGE, allowed_hosts=frozenset({"127.0.0.1"})))

    async def run() -> int:
        await core.open()
        try:
            sent = 0
            while (batch := await core.claim_next()) is not None:
                assert await core.run(batch)
                sent += 1
            return sent
        finally:
            await core.close()

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


@pytest.mark.parametrize(
    ("subscribers", "inactive_last"),
    [(23, 0), (25, 0), (27, 2)],
    ids=["short-last-page", "full-last-page", "full-page-before-the-batch-end"],
)
def test_a_batch_of_several_pages_reaches_everyone_once(
    own_db: Database, sim: PushServiceSimulator, subscribers: int, inactive_last: int
) -> None:
    db = own_db
    partner_id = f"p{secrets.token_hex(5)}"
    partners.create_partner(db, partner_id, "pages")
    subs = add_subscribers(db, partner_id, sim, subscribers)
    campaign_id = asyncio.run(
        create_campaign_async(db, partner_id, NewCampaign("pages", "all_ALL", is_all=True))
    )
    launch_campaign(
        db, partner_id, campaign_id, launch_body(partner_id), events_url="http://127.0.0.1:9/e"
    )
    if inactive_last:  # the plan's last ids, gone after it was written: the batch ends later
        gone, subs = subs[-inactive_last:], subs[:-inactive_last]
        with db.write() as conn:
            conn.execute(
                update(Subscriber)
                .where(Subscriber.endpoint.in_([s.endpoint for s in gone]))
                .values(active=False)
            )

    assert send_everything(db) == 1  # one batch (fewer than 500 ids), several pages
    for sub in subs:
        assert received_payload(sim, sub)["title"] == "Hello"  # exactly one, decrypted
    with db.read() as conn:
        launch_id = launches_q.latest_launch_id(conn, campaign_id)
        launch = launches_q.get_launch(conn, launch_id) if launch_id is not None else None
    assert launch is not None and launch.status == "Sent"
