"""What the panel's pages show, as plain data: the Web Push listing, a campaign with its
notification and numbers, the subscriber breakdowns, and the settings. Campaign numbers
come from the statistics read models, so the panel and the statistics API never differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pushcamp.domain.campaigns import CampaignStatus
from pushcamp.errors import CampaignNotFound, NotFound
from pushcamp.services import launches as launch_services
from pushcamp.services import partners, statistics, tokens
from pushcamp.services.statistics import CampaignReport, Numbers
from pushcamp.store import Database
from pushcamp.store import campaigns as campaigns_q
from pushcamp.store import launches as launches_q
from pushcamp.store import panel_queries as q
from pushcamp.store.models import utcnow
from pushcamp.store.panel_queries import PanelPartner
from pushcamp.store.partners import TokenInfo

PAGE_SIZE = 20
SEARCH_MAX_CHARS = 100
GROWTH_DAYS = 30


@dataclass(frozen=True, slots=True)
class ListingRow:
    id: int
    title: str
    language: str
    status: str
    created_at: datetime
    numbers: Numbers | None


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[ListingRow]
    total: int
    page: int
    pages: int
    search: str


def clean_search(text: str | None) -> str:
    """A title search as typed, trimmed and bounded, without the characters no title can
    hold (NUL, lone surrogates: PostgreSQL refuses them in a query), so never an error."""
    kept = "".join(ch for ch in (text or "") if ch != "\x00" and not 0xD800 <= ord(ch) <= 0xDFFF)
    return kept.strip()[:SEARCH_MAX_CHARS]


def campaign_listing(db: Database, partner_id: str, search: str, page: int) -> Listing:
    """The partner's live ``is_all`` campaigns, newest first, one page of them."""
    search = clean_search(search)
    page = max(1, page)
    with db.read() as conn:
        total, rows = q.list_panel_campaigns(
            conn, partner_id, search, (page - 1) * PAGE_SIZE, PAGE_SIZE
        )
    numbers = statistics.campaign_numbers(db, partner_id, [r.id for r in rows]) if rows else {}
    return Listing(
        rows=[
            ListingRow(r.id, r.title, r.language, r.status, r.created_at, numbers.get(r.id))
            for r in rows
        ],
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        search=search,
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """The notification as a browser shows it."""

    title: str
    body: str
    icon: str | None
    image: str | None
    link: str | None
    # pushcamp's richer notifications (docs/delivery.md): the buttons, as
    # (title, link), and the badge's URL.
    actions: tuple[tuple[str, str], ...] = ()
    badge: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """The newest launch's state, for live progress while it sends."""

    campaign_status: str
    launch_status: str | None
    batches_done: int
    batches_total: int
    numbers: Numbers | None

    @property
    def sending(self) -> bool:
        return self.campaign_status == CampaignStatus.SENDING

    @property
    def batched(self) -> bool:
        """Whether the share of batches done says how far the launch is (a launch of
        one batch is 0% until it ends)."""
        return self.batches_total > 1

    @property
    def percent(self) -> int:
        if self.batches_total <= 0:
            return 100 if self.launch_status == "Sent" else 0
        return min(100, round(100 * self.batches_done / self.batches_total))

    def as_dict(self) -> dict[str, Any]:
        n = self.numbers
        return {
            "status": self.campaign_status,
            "launch_status": self.launch_status,
            "sending": self.sending,
            "percent": self.percent,
            "targeted": n.targeted if n else 0,
            "sent": n.sent if n else 0,
            "dropped": n.dropped if n else 0,
            "delivered": n.delivered if n else 0,
            "clicks": n.clicks if n else 0,
            "delivery_rate": n.delivery_rate if n else 0.0,
            "ctr": n.ctr if n else 0.0,
        }


@dataclass(frozen=True, slots=True)
class CampaignPage:
    id: int
    title: str
    language: str
    status: str
    created_at: datetime
    preview: Preview | None
    progress: Progress
    report: CampaignReport | None
    # The latest launch's schedule and rate (docs/delivery.md): ``send_at`` (its
    # not-before time), ``send_at_local`` (a wall-clock time in each subscriber's zone)
    # and ``max_per_minute``; None when it has none.
    send_at: datetime | None = None
    send_at_local: str | None = None
    max_per_minute: int | None = None


def _live_campaign(db: Database, partner_id: str, campaign_id: int) -> campaigns_q.CampaignRow:
    """The partner's live ``is_all`` campaign; anything else (another partner's, deleted,
    not in the panel, unknown) is :class:`CampaignNotFound` alike."""
    with db.read() as conn:
        row = campaigns_q.get_campaign(conn, partner_id, campaign_id)
    if row is None or row.deleted_at is not None or not row.is_all:
        raise CampaignNotFound()
    return row


def campaign_progress(db: Database, partner_id: str, campaign_id: int) -> Progress:
    row = _live_campaign(db, partner_id, campaign_id)
    return _progress(db, partner_id, row)


def _progress(db: Database, partner_id: str, row: campaigns_q.CampaignRow) -> Progress:
    launches = launch_services.launch_summaries(db, partner_id, row.id)
    latest = launches[-1] if launches else None
    numbers = statistics.campaign_numbers(db, partner_id, [row.id]).get(row.id)
    return Progress(
        campaign_status=row.status,
        launch_status=latest["status"] if latest else None,
        batches_done=int(latest["batches_done"]) if latest else 0,
        batches_total=int(latest["batches_total"]) if latest else 0,
        numbers=numbers,
    )


def campaign_page(db: Database, partner_id: str, campaign_id: int) -> CampaignPage:
    row = _live_campaign(db, partner_id, campaign_id)
    with db.read() as conn:
        launches = launches_q.launches_of_campaign(conn, partner_id, campaign_id)
    default_icon = partners.get_partner(db, partner_id).default_icon
    preview = None
    latest = launches[-1] if launches else None
    if latest is not None:
        request = latest.request
        preview = Preview(
            title=str(request.get("title") or row.title),
            body=str(request.get("description") or ""),
            icon=request.get("image") or default_icon,
            image=request.get("banner"),
            link=request.get("link"),
            actions=tuple(
                (str(a.get("title", "")), str(a.get("link", "")))
                for a in request.get("actions") or ()
            ),
            badge=request.get("badge"),
        )
    return CampaignPage(
        id=row.id,
        title=row.title,
        language=row.language,
        status=row.status,
        created_at=row.created_at,
        preview=preview,
        progress=_progress(db, partner_id, row),
        report=statistics.campaign_report(db, partner_id, campaign_id),
        send_at=latest.not_before if latest is not None else None,
        send_at_local=latest.request.get("send_at_local") if latest is not None else None,
        max_per_minute=latest.max_per_minute if latest is not None else None,
    )


@dataclass(frozen=True, slots=True)
class GrowthPoint:
    day: date
    new: int
    total: int


@dataclass(frozen=True, slots=True)
class SubscriberBreakdown:
    total: int
    engaged: int
    unengaged: int
    engagement_days: int
    by: dict[str, list[tuple[str, int]]]
    growth: list[GrowthPoint]


def subscriber_breakdown(db: Database, partner_id: str) -> SubscriberBreakdown:
    """Active subscribers by language, browser, OS and device; engaged or not (the
    partner's engagement window); subscriptions made per day over the last 30 days."""
    now = utcnow()
    today = now.date()
    first_day = today - timedelta(days=GROWTH_DAYS - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=now.tzinfo)
    with db.read() as conn:
        partner = q.get_panel_partner(conn, partner_id)
        if partner is None:
            raise NotFound(f"no partner {partner_id!r}")
        by = {
            name: [(value or "unknown", n) for value, n in q.count_by(conn, partner_id, name)]
            for name in q.BREAKDOWN_COLUMNS
        }
        engaged, unengaged = q.count_engaged(
            conn, partner_id, now - timedelta(days=partner.engagement_days)
        )
        before, per_day = q.new_per_day(conn, partner_id, since)
    growth: list[GrowthPoint] = []
    running = before
    for i in range(GROWTH_DAYS):
        day = first_day + timedelta(days=i)
        running += per_day.get(day, 0)
        growth.append(GrowthPoint(day, per_day.get(day, 0), running))
    return SubscriberBreakdown(
        total=engaged + unengaged,
        engaged=engaged,
        unengaged=unengaged,
        engagement_days=partner.engagement_days,
        by=by,
        growth=growth,
    )


@dataclass(frozen=True, slots=True)
class SettingsView:
    partner: PanelPartner
    vapid_public_key: str
    tokens: list[TokenInfo]


def settings_view(db: Database, partner_id: str) -> SettingsView:
    with db.read() as conn:
        partner = q.get_panel_partner(conn, partner_id)
    if partner is None:
        raise NotFound(f"no partner {partner_id!r}")
    return SettingsView(
        partner=partner,
        vapid_public_key=partners.vapid_public_key(db, partner_id),
        tokens=tokens.list_tokens(db, partner_id),
    )
