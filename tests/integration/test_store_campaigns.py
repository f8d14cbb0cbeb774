"""insert_campaigns: one statement for a whole batch, with the same outcome as inserting
the rows one by one in order — on both backends, whose RETURNING order is not promised."""

from __future__ import annotations

from sqlalchemy import select

from pushcamp.store import Database
from pushcamp.store import campaigns as q
from pushcamp.store.models import Campaign
from tests.conftest import Tenant


def row(tenant: Tenant, title: str, language: str = "en_US") -> q.NewCampaignRow:
    return q.NewCampaignRow(tenant.partner_id, title, language, False, "Draft")


def test_each_row_gets_its_own_id_and_repeats_are_duplicates(db: Database, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    with db.write() as conn:
        (taken,) = q.insert_campaigns(conn, [row(a, "taken")])
    rows = [row(a, f"t{i}") for i in range(30)]
    rows[3:3] = [row(a, "t7", "de_DE"), row(a, "taken"), row(b, "t1", "fr_FR")]
    rows.append(row(a, "t0", "it_IT"))
    with db.write() as conn:
        ids = q.insert_campaigns(conn, rows)

    assert taken is not None
    assert ids[4] is None  # a live campaign already has the title
    assert ids[-1] is None  # repeats an earlier row of the batch
    assert ids[3] is not None  # "t7" first appears here, so this row wins it...
    assert rows[10].title == "t7" and ids[10] is None  # ...and the later "t7" is a duplicate
    assert ids[5] is not None  # another partner's "t1" is not a duplicate
    with db.read() as conn:
        stored = {
            r.id: (r.partner_id, r.title, r.language)
            for r in conn.execute(
                select(Campaign.id, Campaign.partner_id, Campaign.title, Campaign.language)
            )
        }
    for new_id, r in zip(ids, rows, strict=True):
        if new_id is not None:  # the id names exactly the row it was returned for
            assert stored[new_id] == (r.partner_id, r.title, r.language)
    assert len({i for i in ids if i is not None}) == sum(i is not None for i in ids)
