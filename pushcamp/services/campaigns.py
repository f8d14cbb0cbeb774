"""Campaign use cases."""

from __future__ import annotations

from pushcamp.domain.campaigns import CampaignStatus, NewCampaign
from pushcamp.errors import CampaignNotFound, DuplicateTitle
from pushcamp.services.launches import launch_summaries, stop_launches
from pushcamp.store import Database
from pushcamp.store import campaigns as q
from pushcamp.timeutil import iso


async def create_campaign_async(
    db: Database, partner_id: str, campaign: NewCampaign, timeout: float | None = None
) -> int:
    """Store a new Draft campaign and return its id, group-committed with other concurrent
    writes (returns only after the commit). A live duplicate title is refused by the
    database's unique index, so concurrent creates of one title yield one winner. Raises
    DependencyUnavailable if the database fails or has not answered within ``timeout``."""
    row = q.NewCampaignRow(
        partner_id=partner_id,
        title=campaign.title,
        language=campaign.language,
        is_all=campaign.is_all,
        status=CampaignStatus.DRAFT.value,
    )
    campaign_id = await db.batcher.run_grouped(q.insert_campaigns, row, timeout)
    if campaign_id is None:
        raise DuplicateTitle()
    return campaign_id


def campaign_status(db: Database, partner_id: str, campaign_id: int) -> dict[str, object]:
    """The campaign as §2.5 shows it. Unknown and other partners' ids look the same."""
    with db.read() as conn:
        row = q.get_campaign(conn, partner_id, campaign_id)
    if row is None:
        raise CampaignNotFound()
    return {
        "campaign_id": row.id,
        "title": row.title,
        "language": row.language,
        "is_all": row.is_all,
        "status": row.status,
        "created_at": iso(row.created_at),
        "launches": launch_summaries(db, partner_id, campaign_id),
    }


def delete_campaign(db: Database, partner_id: str, campaign_id: int) -> None:
    """Mark the campaign deleted: it leaves the panel, its title is free again, its
    records stay, and its running launches stop (no further notification goes out).
    Deleting an unknown or already deleted campaign is a 400."""
    with db.write() as conn:
        if not q.mark_deleted(conn, partner_id, campaign_id, CampaignStatus.DELETED):
            raise CampaignNotFound()
        stop_launches(conn, partner_id, campaign_id)
