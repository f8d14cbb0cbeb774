"""Statistics use cases (contract §2.4): a campaign's numbers, a partner's campaigns page
by page, the partner's totals, and conversions. They return plain dataclasses; the API
(api/routes/statistics.py) and the panel each render them their own way.

Every number comes from the counters in ``launch_stats`` (store/statistics.py), the
same source §2.5's launch counters read, so the two always agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pushcamp.domain import personalise
from pushcamp.domain import statistics as rules
from pushcamp.domain.event_tokens import verify
from pushcamp.domain.statistics import DateRange, Metric
from pushcamp.errors import InvalidRequest, NotFound
from pushcamp.store import Database
from pushcamp.store import statistics as q
from pushcamp.store.models import utcnow

# --- what the use cases return ----------------------------------------------------------------


@dataclass(frozen=True)
class Numbers:
    """One set of §2.4 numbers. Rates are 0..1, and 0 when their denominator is 0."""

    targeted: int
    sent: int
    dropped: int
    delivered: int
    undelivered: int
    clicks: int
    conversions: int
    revenue: Decimal
    delivery_rate: float
    ctr: float
    conversion_rate: float


@dataclass(frozen=True)
class DeviceNumbers:
    device: str  # Desktop, Mobile, Tablet, Unknown
    sent: int
    delivered: int
    clicks: int
    conversions: int
    revenue: Decimal
    delivery_rate: float
    ctr: float
    conversion_rate: float


@dataclass(frozen=True)
class ReasonCount:
    label: str
    count: int
    share: float  # of its list's total, 0..1


@dataclass(frozen=True)
class TimelinePoint:
    at: datetime  # start of the minute or hour, UTC
    sent: int
    delivered: int
    clicked: int


@dataclass(frozen=True)
class VariantNumbers:
    """One arm of an A/B launch (docs/delivery.md, "A/B tests")."""

    launch_id: int
    index: int
    label: str  # A, B, C, D
    title: str
    description: str
    split: int  # percent of the audience
    targeted: int
    sent: int
    delivered: int
    clicks: int
    ctr: float  # clicks / delivered, 0 when nothing was delivered
    winner: bool


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    title: str
    is_all: bool
    status: str
    created_at: datetime
    currency: str
    numbers: Numbers
    by_device: list[DeviceNumbers]
    dropped: list[ReasonCount]
    undelivered: list[ReasonCount]
    timeline: list[TimelinePoint]
    timeline_step: timedelta
    first_sent_at: datetime | None  # the first launch's start
    first_launched_at: datetime | None
    last_finished_at: datetime | None  # None while a launch has not ended
    link: str | None
    ttl_ended: bool  # every launch ended and its TTL is over: the numbers are final
    # Clicks on action button 0 and 1 (within ``numbers.clicks``), and the first launch's
    # button labels.
    button_clicks: tuple[int, int] = (0, 0)
    button_titles: tuple[str, ...] = ()
    # The arms of the campaign's A/B launches, launch by launch (empty without one).
    variants: tuple[VariantNumbers, ...] = ()


@dataclass(frozen=True)
class CampaignSummary:
    """One row of overall-metrics."""

    campaign_id: int
    title: str
    is_all: bool
    status: str
    first_sent_at: datetime | None
    first_launched_at: datetime | None
    last_finished_at: datetime | None
    link: str | None
    numbers: Numbers
    button_links: tuple[str, ...] = ()  # the first launch's action buttons' links


@dataclass(frozen=True)
class OverallPage:
    page: int
    per_page: int
    total: int
    rows: list[CampaignSummary]


@dataclass(frozen=True)
class TypePerformance:
    label: str  # Bulk, Segment
    campaign_count: int
    numbers: Numbers


@dataclass(frozen=True)
class PartnerReport:
    currency: str
    numbers: Numbers
    performance: list[TypePerformance]
    dropped: list[ReasonCount]
    undelivered: list[ReasonCount]


# --- assembling numbers -------------------------------------------------------------------------

Tally = tuple[int, Decimal]  # count, revenue


def _numbers(metrics: Mapping[str, Tally], undelivered_split: Mapping[str, int]) -> Numbers:
    sent = metrics.get(Metric.SENT, (0, Decimal(0)))[0]
    dropped = sum(n for m, (n, _) in metrics.items() if m.startswith(rules.DROPPED_PREFIX))
    delivered = metrics.get(Metric.DELIVERED, (0, Decimal(0)))[0]
    clicks = metrics.get(Metric.CLICKED, (0, Decimal(0)))[0]
    conversions, revenue = metrics.get(Metric.CONVERSION, (0, Decimal(0)))
    return Numbers(
        targeted=sent + dropped,
        sent=sent,
        dropped=dropped,
        delivered=delivered,
        undelivered=sum(undelivered_split.values()),
        clicks=clicks,
        conversions=conversions,
        revenue=revenue,
        delivery_rate=rules.rate(delivered, sent),
        ctr=rules.rate(clicks, delivered),
        conversion_rate=rules.rate(conversions, clicks),
    )


def _merge(into: dict[str, Tally], metric: str, n: int, revenue: Decimal) -> None:
    old_n, old_revenue = into.get(metric, (0, Decimal(0)))
    into[metric] = (old_n + n, old_revenue + revenue)


def _zero() -> Numbers:
    return _numbers({}, {})


def _expired_sends(
    sent_minutes: Iterable[tuple[int, datetime, int]], ttl: Mapping[int, int], now: datetime
) -> dict[int, int]:
    """Per launch, the sends whose TTL has run out (the whole minute's sends: a minute
    counts once its last second plus the TTL is past)."""
    out: dict[int, int] = defaultdict(int)
    for launch_id, minute, n in sent_minutes:
        if minute + timedelta(minutes=1) + timedelta(seconds=ttl.get(launch_id, 0)) <= now:
            out[launch_id] += n
    return out


class _Tallies:
    """Counters of a set of launches, per launch and metric, with the undelivered split."""

    def __init__(
        self,
        per_launch: dict[int, dict[str, Tally]],
        expired: Mapping[int, int],
    ) -> None:
        self.per_launch = per_launch
        self.split: dict[int, dict[str, int]] = {}
        for launch_id, metrics in per_launch.items():
            sent = metrics.get(Metric.SENT, (0, Decimal(0)))[0]
            delivered = metrics.get(Metric.DELIVERED, (0, Decimal(0)))[0]
            self.split[launch_id] = rules.undelivered_split(
                max(sent - delivered, 0), expired.get(launch_id, 0), delivered
            )

    def numbers(self, launch_ids: Iterable[int]) -> Numbers:
        metrics: dict[str, Tally] = {}
        split: dict[str, int] = defaultdict(int)
        for launch_id in launch_ids:
            for metric, (n, revenue) in self.per_launch.get(launch_id, {}).items():
                _merge(metrics, metric, n, revenue)
            for label, n in self.split.get(launch_id, {}).items():
                split[label] += n
        return _numbers(metrics, split)

    def dropped(self, launch_ids: Iterable[int]) -> list[ReasonCount]:
        metrics: dict[str, Tally] = {}
        for launch_id in launch_ids:
            for metric, (n, revenue) in self.per_launch.get(launch_id, {}).items():
                _merge(metrics, metric, n, revenue)
        return _dropped(metrics)

    def undelivered(self, launch_ids: Iterable[int]) -> list[ReasonCount]:
        by_label: dict[str, int] = defaultdict(int)
        for launch_id in launch_ids:
            for label, n in self.split.get(launch_id, {}).items():
                by_label[label] += n
        return _reasons(by_label, rules.UNDELIVERED_LABELS)


def _dropped(metrics: Mapping[str, Tally]) -> list[ReasonCount]:
    """The five contract labels of dropped messages, from counters by metric."""
    by_label: dict[str, int] = defaultdict(int)
    for metric, (n, _) in metrics.items():
        if metric.startswith(rules.DROPPED_PREFIX):
            by_label[rules.dropped_label(metric.removeprefix(rules.DROPPED_PREFIX))] += n
    return _reasons(by_label, rules.DROPPED_LABELS)


def _reasons(counts: Mapping[str, int], labels: Sequence[str]) -> list[ReasonCount]:
    return [ReasonCount(s.label, s.count, s.share) for s in rules.reason_shares(counts, labels)]


def _tallies(
    conn: Connection,
    partner_id: str,
    campaign_ids: Sequence[int] | None,
    launches: Sequence[q.LaunchInfo],
    window: DateRange | None,
    now: datetime,
) -> _Tallies:
    since, until = (window.since, window.until) if window else (None, None)
    per_launch: dict[int, dict[str, Tally]] = defaultdict(dict)
    for launch_id, metric, n, revenue in q.sums(
        conn,
        partner_id,
        ("launch", "metric"),
        campaign_ids=campaign_ids,
        since=since,
        until=until,
    ):
        _merge(per_launch[launch_id], metric, n, revenue)
    sent_minutes = q.sent_per_launch_minute(
        conn,
        partner_id,
        campaign_ids,
        since,
        until,
    )
    expired = _expired_sends(sent_minutes, {launch.id: launch.ttl for launch in launches}, now)
    return _Tallies(dict(per_launch), expired)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _window(start: date | None, end: date | None) -> DateRange | None:
    if start is None and end is None:
        return None
    return rules.DateRange(start or date.min, end or date.max)


# --- use cases ----------------------------------------------------------------------------------


def campaign_numbers(
    db: Database, partner_id: str, campaign_ids: Sequence[int]
) -> dict[int, Numbers]:
    """All-time numbers of the partner's campaigns among ``campaign_ids`` (a listing
    page): a constant number of queries whatever the number of campaigns. Ids that are
    not the partner's are left out."""
    ids = list(dict.fromkeys(int(i) for i in campaign_ids))
    if not ids:
        return {}
    now = utcnow()
    with db.read() as conn:
        owned = q.campaign_rows(conn, partner_id, ids)
        launches = q.launch_infos(conn, partner_id, list(owned))
        tallies = _tallies(conn, partner_id, list(owned), launches, None, now)
    by_campaign: dict[int, list[int]] = defaultdict(list)
    for launch in launches:
        by_campaign[launch.campaign_id].append(launch.id)
    return {cid: tallies.numbers(by_campaign.get(cid, [])) for cid in ids if cid in owned}


def campaign_report(
    db: Database,
    partner_id: str,
    campaign_id: int,
    start: date | None = None,
    end: date | None = None,
    *,
    now: datetime | None = None,
) -> CampaignReport | None:
    """One campaign's numbers counted over the days ``start``..``end`` (UTC, inclusive;
    None: unbounded), with the breakdowns and the timeline; None when the partner has no
    such campaign (another partner's id included)."""
    now = now or utcnow()
    window = _window(start, end)
    since, until = (window.since, window.until) if window else (None, None)
    with db.read() as conn:
        found = q.campaign_rows(conn, partner_id, [campaign_id])
        if campaign_id not in found:
            return None
        campaign = found[campaign_id]
        settings = q.conversion_settings(conn, partner_id)
        launches = q.launch_infos(conn, partner_id, [campaign_id])
        tallies = _tallies(conn, partner_id, [campaign_id], launches, window, now)
        devices = q.sums(
            conn,
            partner_id,
            ("device", "metric"),
            campaign_ids=[campaign_id],
            since=since,
            until=until,
        )
        buckets = q.bucket_sums(conn, partner_id, campaign_id, since, until)
        buttons = q.button_clicks(
            conn, partner_id, [launch.id for launch in launches], since, until
        )
        arms = q.variant_sums(conn, [launch.id for launch in launches if launch.ab], since, until)
    launch_ids = [launch.id for launch in launches]
    step, timeline = _timeline(buckets)
    return CampaignReport(
        campaign_id=campaign.id,
        title=campaign.title,
        is_all=campaign.is_all,
        status=campaign.status,
        created_at=_aware(campaign.created_at) or now,
        currency=settings.currency if settings else rules.DEFAULT_CURRENCY,
        numbers=tallies.numbers(launch_ids),
        by_device=_by_device(devices),
        dropped=tallies.dropped(launch_ids),
        undelivered=tallies.undelivered(launch_ids),
        timeline=timeline,
        timeline_step=step,
        **_dates(launches),
        link=launches[0].link if launches else None,
        ttl_ended=_ttl_ended(launches, now),
        button_clicks=(buttons.get(0, 0), buttons.get(1, 0)),
        button_titles=launches[0].button_titles if launches else (),
        variants=_variants(launches, arms),
    )


def _variants(
    launches: Sequence[q.LaunchInfo], sums: Mapping[tuple[int, int], Mapping[str, int]]
) -> tuple[VariantNumbers, ...]:
    """Each A/B launch's arms with their numbers; the winner marked (personalise.ab_winner:
    the highest click-through rate once every arm has enough delivered)."""
    out: list[VariantNumbers] = []
    for launch in launches:
        counts = [sums.get((launch.id, index), {}) for index in range(len(launch.ab))]
        pairs = [(c.get("delivered", 0), c.get("clicked", 0)) for c in counts]
        winner = personalise.ab_winner(pairs)
        for index, ((title, description, split), c) in enumerate(
            zip(launch.ab, counts, strict=True)
        ):
            delivered, clicks = pairs[index]
            out.append(
                VariantNumbers(
                    launch_id=launch.id,
                    index=index,
                    label=personalise.variant_label(index),
                    title=title,
                    description=description,
                    split=split,
                    targeted=c.get("targeted", 0),
                    sent=c.get("sent", 0),
                    delivered=delivered,
                    clicks=clicks,
                    ctr=clicks / delivered if delivered else 0.0,
                    winner=winner == index,
                )
            )
    return tuple(out)


def _dates(launches: Sequence[q.LaunchInfo]) -> dict[str, datetime | None]:
    started = [_aware(launch.started_at) for launch in launches if launch.started_at]
    finished = [_aware(launch.finished_at) for launch in launches]
    return {
        "first_sent_at": min(started) if started else None,  # type: ignore[type-var]
        "first_launched_at": _aware(launches[0].created_at) if launches else None,
        "last_finished_at": (
            max(finished)  # type: ignore[type-var]
            if finished and all(f is not None for f in finished)
            else None
        ),
    }


def _ttl_ended(launches: Sequence[q.LaunchInfo], now: datetime) -> bool:
    for launch in launches:
        finished = _aware(launch.finished_at)
        if finished is None or finished + timedelta(seconds=launch.ttl) > now:
            return False
    return True


def _by_device(rows: Iterable[tuple[str, str, int, Decimal]]) -> list[DeviceNumbers]:
    metrics: dict[str, dict[str, Tally]] = defaultdict(dict)
    for device, metric, n, revenue in rows:
        _merge(metrics[rules.device_label(device)], metric, n, revenue)
    out = []
    order = [*rules.DEVICE_LABELS.values(), rules.UNKNOWN_DEVICE]
    for label in sorted(metrics, key=order.index):
        m = metrics[label]
        if not any(m.get(k, (0, 0))[0] for k in (Metric.SENT, Metric.DELIVERED, Metric.CLICKED)):
            continue  # only drops on this device: nothing to rate
        sent = m.get(Metric.SENT, (0, Decimal(0)))[0]
        delivered = m.get(Metric.DELIVERED, (0, Decimal(0)))[0]
        clicks = m.get(Metric.CLICKED, (0, Decimal(0)))[0]
        conversions, revenue = m.get(Metric.CONVERSION, (0, Decimal(0)))
        out.append(
            DeviceNumbers(
                device=label,
                sent=sent,
                delivered=delivered,
                clicks=clicks,
                conversions=conversions,
                revenue=revenue,
                delivery_rate=rules.rate(delivered, sent),
                ctr=rules.rate(clicks, delivered),
                conversion_rate=rules.rate(conversions, clicks),
            )
        )
    return out


def _timeline(
    buckets: Sequence[tuple[datetime, str, int]],
) -> tuple[timedelta, list[TimelinePoint]]:
    """Per minute when the activity spans under 3 hours, else per hour; every step from
    the first to the last active one is present (zeros included)."""
    wanted = (Metric.SENT, Metric.DELIVERED, Metric.CLICKED)
    active = [b for b, metric, n in buckets if metric in wanted and n]
    if not active:
        return timedelta(minutes=1), []
    step = rules.bucket_step(min(active), max(active))
    points: dict[datetime, dict[str, int]] = {}
    for bucket, metric, n in buckets:
        if metric in wanted:
            at = rules.floor_to(bucket, step)
            points.setdefault(at, defaultdict(int))[metric] += n
    first, last = min(points), max(points)
    out = []
    at = first
    while at <= last:
        p = points.get(at, {})
        out.append(
            TimelinePoint(
                at, p.get(Metric.SENT, 0), p.get(Metric.DELIVERED, 0), p.get(Metric.CLICKED, 0)
            )
        )
        at += step
    return step, out


def overall(
    db: Database, partner_id: str, window: DateRange, page: int, per_page: int
) -> OverallPage:
    """The partner's campaigns with anything counted in the range, newest first, one
    page of them, each with its numbers over the range."""
    now = utcnow()
    with db.read() as conn:
        total, ids = q.active_campaigns(
            conn, partner_id, window.since, window.until, (page - 1) * per_page, per_page
        )
        campaigns = q.campaign_rows(conn, partner_id, ids)
        launches = q.launch_infos(conn, partner_id, ids) if ids else []
        tallies = _tallies(conn, partner_id, ids, launches, window, now) if ids else None
    by_campaign: dict[int, list[q.LaunchInfo]] = defaultdict(list)
    for launch in launches:
        by_campaign[launch.campaign_id].append(launch)
    rows = []
    for cid in ids:
        campaign = campaigns[cid]
        own = by_campaign[cid]
        assert tallies is not None
        rows.append(
            CampaignSummary(
                campaign_id=cid,
                title=campaign.title,
                is_all=campaign.is_all,
                status=campaign.status,
                link=own[0].link if own else None,
                button_links=own[0].button_links if own else (),
                numbers=tallies.numbers(launch.id for launch in own),
                **_dates(own),
            )
        )
    return OverallPage(page, per_page, total, rows)


def partner_report(db: Database, partner_id: str, window: DateRange) -> PartnerReport:
    """The partner's totals over the range (top-metrics), per campaign type as well.

    The database sums the counters per type and metric, and per launch for the
    undelivered split (with the expiry of the sends), so what comes back is a handful
    of rows plus one per active launch, whatever the number of records or minutes."""
    now = utcnow()
    with db.read() as conn:
        settings = q.conversion_settings(conn, partner_id)
        type_rows = q.type_sums(conn, partner_id, window.since, window.until)
        launches = q.launch_totals(conn, partner_id, window.since, window.until, now)
    metrics: dict[bool, dict[str, Tally]] = {True: {}, False: {}}
    for is_all, metric, n, revenue in type_rows:
        _merge(metrics[is_all], metric, n, revenue)
    split: dict[bool, dict[str, int]] = {True: defaultdict(int), False: defaultdict(int)}
    campaigns: dict[bool, set[int]] = {True: set(), False: set()}
    for launch in launches:
        campaigns[launch.is_all].add(launch.campaign_id)
        undelivered = max(launch.sent - launch.delivered, 0)
        of_type = split[launch.is_all]
        for label, n in rules.undelivered_split(
            undelivered, launch.sent_expired, launch.delivered
        ).items():
            of_type[label] += n
    performance = []
    for label in rules.CAMPAIGN_TYPES:
        is_all = label == rules.campaign_type(True)
        performance.append(
            TypePerformance(label, len(campaigns[is_all]), _numbers(metrics[is_all], split[is_all]))
        )
    total: dict[str, Tally] = {}
    total_split: dict[str, int] = defaultdict(int)
    for is_all in (True, False):
        for metric, (n, revenue) in metrics[is_all].items():
            _merge(total, metric, n, revenue)
        for label, n in split[is_all].items():
            total_split[label] += n
    return PartnerReport(
        currency=settings.currency if settings else rules.DEFAULT_CURRENCY,
        numbers=_numbers(total, total_split),
        performance=performance,
        dropped=_dropped(total),
        undelivered=_reasons(total_split, rules.UNDELIVERED_LABELS),
    )


# --- conversions --------------------------------------------------------------------------------


def record_conversion(
    db: Database,
    signing_key: bytes,
    token: str,
    conversion: rules.Conversion,
    now: datetime,
) -> None:
    """Attribute a conversion to the click whose event token the page passes on (§2.4,
    §3): the token must be the partner's and unexpired, the click recorded, the
    conversion within the partner's attribution window after it and in the partner's
    currency; at most one per (launch, subscriber) without order id and one per order
    id. Refusals are 400s and store nothing."""
    claim = verify(signing_key, token, int(now.timestamp()))
    try:
        with db.write() as conn:
            settings = q.conversion_settings(conn, claim.partner_id)
            if settings is None:
                raise InvalidRequest.of("token", "invalid signature")
            if conversion.currency != settings.currency:
                raise InvalidRequest.of(
                    "currency", f"this site's conversions are in {settings.currency}"
                )
            clicked_at = q.click_time(conn, claim.launch_id, claim.subscriber_id)
            if clicked_at is None:
                raise InvalidRequest.of("token", "this notification was not clicked")
            if not rules.within_window(clicked_at, now, settings.attribution_hours):
                raise InvalidRequest.of(
                    "token",
                    f"the click is older than the {settings.attribution_hours} h "
                    "attribution window",
                )
            q.insert_conversion(
                conn,
                partner_id=claim.partner_id,
                launch_id=claim.launch_id,
                subscriber_id=claim.subscriber_id,
                order_id=conversion.order_id,
                value=conversion.value,
                currency=conversion.currency,
                now=now,
            )
            q.count_event(
                conn,
                claim.partner_id,
                claim.launch_id,
                claim.subscriber_id,
                Metric.CONVERSION,
                now,
                conversion.value,
            )
    except IntegrityError as exc:
        field = "order_id" if conversion.order_id is not None else "token"
        raise InvalidRequest.of(field, "this conversion was already recorded") from exc


def conversion_settings(db: Database, partner_id: str) -> q.ConversionSettings:
    with db.read() as conn:
        settings = q.conversion_settings(conn, partner_id)
    if settings is None:
        raise NotFound(f"no partner {partner_id!r}")
    return settings


def set_conversion_settings(
    db: Database,
    partner_id: str,
    *,
    currency: str | None = None,
    attribution_hours: int | None = None,
) -> q.ConversionSettings:
    """Change the partner's conversion currency and/or attribution window (hours)."""
    values: dict[str, object] = {}
    if currency is not None:
        values["currency"] = rules.check_currency("currency", currency)
    if attribution_hours is not None:
        values["attribution_hours"] = rules.check_attribution_hours(attribution_hours)
    with db.write() as conn:
        if not q.set_conversion_settings(conn, partner_id, values):
            raise NotFound(f"no partner {partner_id!r}")
        settings = q.conversion_settings(conn, partner_id)
    assert settings is not None
    return settings


__all__ = [
    "CampaignReport",
    "CampaignSummary",
    "DeviceNumbers",
    "Numbers",
    "OverallPage",
    "PartnerReport",
    "ReasonCount",
    "TimelinePoint",
    "TypePerformance",
    "campaign_numbers",
    "campaign_report",
    "conversion_settings",
    "overall",
    "partner_report",
    "record_conversion",
    "set_conversion_settings",
]
