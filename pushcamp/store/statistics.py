"""Statistics counters and the queries that read them (docs/statistics.md).

Counters live in ``launch_stats``: one row per launch, minute, metric, device and shard,
incremented in the same transaction that writes what they count (delivery records,
events, conversions), so a count never disagrees with the records after a commit and a
rolled-back write counts nothing. Reads sum a few rows instead of scanning a million
records. Any code that deletes or rewrites delivery records must keep them in step
(:func:`uncount_deliveries`), or rebuild a launch's counters (:func:`recount_launch`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    Table,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from pushcamp.domain.statistics import DROPPED_PREFIX, Metric
from pushcamp.store.models import (
    Campaign,
    Conversion,
    Delivery,
    Event,
    Launch,
    LaunchStat,
    LaunchVariantStat,
    Partner,
    Subscriber,
)

# PostgreSQL: concurrent writers of one launch spread over this many rows per counter, so
# that they rarely wait on each other's row lock. SQLite has one writer: one row.
SHARDS = 8
_KEY = ("launch_id", "bucket", "metric", "device", "shard")
_STATS: Table = LaunchStat.__table__  # type: ignore[assignment]


def _minute(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # SQLite hands datetimes back naive; they are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _upsert_statement(dialect: str) -> Any:
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(_STATS)
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={
            "count": _STATS.c.count + stmt.excluded.count,
            "revenue": _STATS.c.revenue + stmt.excluded.revenue,
        },
    )


_UPSERT = {name: _upsert_statement(name) for name in ("postgresql", "sqlite")}


def _add(
    conn: Connection, tallies: dict[tuple[int, datetime, str, str], tuple[int, Decimal]]
) -> None:
    """Add to the counters. Rows go in key order, so that two PostgreSQL transactions
    that touch the same counters lock them in the same order (no deadlock)."""
    if not tallies:
        return
    pg = conn.dialect.name == "postgresql"
    shard = random.randrange(SHARDS) if pg else 0
    rows = [
        {
            "launch_id": launch_id,
            "bucket": bucket,
            "metric": metric,
            "device": device,
            "shard": shard,
            "count": n,
            "revenue": revenue,
        }
        for (launch_id, bucket, metric, device), (n, revenue) in sorted(tallies.items())
    ]
    conn.execute(_UPSERT[conn.dialect.name], rows)


# --- A/B arms ------------------------------------------------------------------------------

_VKEY = ("launch_id", "variant", "bucket", "metric", "shard")
_VSTATS: Table = LaunchVariantStat.__table__  # type: ignore[assignment]
TARGETED = "targeted"


def _vupsert_statement(dialect: str) -> Any:
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(_VSTATS)
    return stmt.on_conflict_do_update(
        index_elements=list(_VKEY), set_={"count": _VSTATS.c.count + stmt.excluded.count}
    )


_VUPSERT = {name: _vupsert_statement(name) for name in ("postgresql", "sqlite")}


def _add_variants(conn: Connection, tallies: dict[tuple[int, int, datetime, str], int]) -> None:
    """Add to the per-arm counters, in key order (see :func:`_add`)."""
    tallies = {key: n for key, n in tallies.items() if n}
    if not tallies:
        return
    shard = random.randrange(SHARDS) if conn.dialect.name == "postgresql" else 0
    rows = [
        {
            "launch_id": launch_id,
            "variant": variant,
            "bucket": bucket,
            "metric": metric,
            "shard": shard,
            "count": n,
        }
        for (launch_id, variant, bucket, metric), n in sorted(tallies.items())
    ]
    conn.execute(_VUPSERT[conn.dialect.name], rows)


def variant_sums(
    conn: Connection,
    launch_ids: Sequence[int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[tuple[int, int], dict[str, int]]:
    """Per (launch, arm), the per-arm counters summed over the range: ``targeted``,
    ``sent``, ``delivered``, ``clicked``."""
    out: dict[tuple[int, int], dict[str, int]] = {}
    if not launch_ids:
        return out
    v = LaunchVariantStat
    stmt = (
        select(v.launch_id, v.variant, v.metric, func.sum(v.count))
        .where(v.launch_id.in_(list(launch_ids)))
        .group_by(v.launch_id, v.variant, v.metric)
    )
    if since is not None:
        stmt = stmt.where(v.bucket >= since)
    if until is not None:
        stmt = stmt.where(v.bucket < until)
    for launch_id, variant, metric, n in conn.execute(stmt).all():
        out.setdefault((int(launch_id), int(variant)), {})[metric] = int(n or 0)
    return out


def _recount_variants(conn: Connection, launch_id: int | None) -> None:
    if not inspect(conn).has_table(_VSTATS.name):
        return  # the migration that introduced launch_stats (0005) runs before 0012
    where = [] if launch_id is None else [LaunchVariantStat.launch_id == launch_id]
    conn.execute(delete(LaunchVariantStat).where(*where))
    columns = ["launch_id", "variant", "bucket", "metric", "shard", "count"]
    bucket = _minute_sql(conn, Delivery.created_at)
    dwhere: list[ColumnElement[bool]] = [Delivery.variant.is_not(None)]
    if launch_id is not None:
        dwhere.append(Delivery.launch_id == launch_id)
    targeted = (
        select(
            Delivery.launch_id,
            Delivery.variant,
            bucket,
            literal(TARGETED),
            literal(0),
            func.count(),
        )
        .where(*dwhere)
        .group_by(Delivery.launch_id, Delivery.variant, bucket)
    )
    sent = (
        select(
            Delivery.launch_id,
            Delivery.variant,
            bucket,
            literal(str(Metric.SENT)),
            literal(0),
            func.count(),
        )
        .where(*dwhere, Delivery.state == "sent")
        .group_by(Delivery.launch_id, Delivery.variant, bucket)
    )
    ebucket = _minute_sql(conn, Event.created_at)
    events = (
        select(Event.launch_id, Delivery.variant, ebucket, Event.type, literal(0), func.count())
        .join(
            Delivery,
            and_(
                Delivery.launch_id == Event.launch_id, Delivery.subscriber_id == Event.subscriber_id
            ),
        )
        .where(*dwhere, Event.type.in_([str(Metric.DELIVERED), str(Metric.CLICKED)]))
        .group_by(Event.launch_id, Delivery.variant, ebucket, Event.type)
    )
    for source in (targeted, sent, events):
        conn.execute(insert(LaunchVariantStat).from_select(columns, source))


def delivery_metric(state: str, reason: str | None) -> str:
    return Metric.SENT if state == "sent" else f"{DROPPED_PREFIX}{reason or 'internalErrors'}"


def count_deliveries(conn: Connection, rows: Iterable[Any], sign: int = 1) -> None:
    """Count delivery records just written (``sign=-1``: just deleted). Each row has
    ``launch_id``, ``state``, ``reason``, ``device`` and ``created_at``, as a mapping or
    attributes (a ``RETURNING`` row)."""
    # The rows (up to 500 a group) share a handful of (minute, state, reason, device,
    # arm): they are grouped first and each group's counters worked out once.
    groups: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        r = row if isinstance(row, dict) else row._mapping
        at = r["created_at"].replace(second=0, microsecond=0)
        groups[(r["launch_id"], at, r["state"], r["reason"], r["device"], r.get("variant"))] += 1
    tally: Counter[tuple[int, datetime, str, str]] = Counter()
    arms: Counter[tuple[int, int, datetime, str]] = Counter()
    for (launch_id, moment, state, reason, device, variant), n in groups.items():
        launch_id = int(launch_id)
        minute = _minute(moment)
        tally[(launch_id, minute, delivery_metric(state, reason), device or "")] += sign * n
        if variant is not None:
            arms[(launch_id, int(variant), minute, TARGETED)] += sign * n
            if state == "sent":
                arms[(launch_id, int(variant), minute, str(Metric.SENT))] += sign * n
    _add(conn, {key: (n, Decimal(0)) for key, n in tally.items() if n})
    _add_variants(conn, arms)


def uncount_deliveries(conn: Connection, rows: Iterable[Any]) -> None:
    """Take deleted delivery records (``DELETE ... RETURNING`` rows) off the counters."""
    count_deliveries(conn, rows, sign=-1)


def count_event(
    conn: Connection,
    partner_id: str,
    launch_id: int,
    subscriber_id: int,
    metric: str,
    now: datetime,
    revenue: Decimal = Decimal(0),
) -> None:
    """Count one event (delivered, clicked) or conversion, under the subscriber's device,
    and a delivered or clicked one of an A/B launch under the subscriber's arm (the one
    its delivery record holds)."""
    found = conn.execute(
        select(Subscriber.device, Delivery.variant)
        .outerjoin(
            Delivery,
            and_(Delivery.launch_id == launch_id, Delivery.subscriber_id == Subscriber.id),
        )
        .where(Subscriber.id == subscriber_id, Subscriber.partner_id == partner_id)
    ).first()
    device, variant = (found[0], found[1]) if found is not None else (None, None)
    _add(conn, {(launch_id, _minute(now), metric, device or ""): (1, revenue)})
    if variant is not None and metric in (Metric.DELIVERED, Metric.CLICKED):
        _add_variants(conn, {(launch_id, int(variant), _minute(now), str(metric)): 1})


# --- rebuilding -----------------------------------------------------------------------------


def _minute_sql(conn: Connection, column: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("minute", column)
    # The text SQLAlchemy stores a SQLite datetime as, truncated to the minute.
    return func.strftime("%Y-%m-%d %H:%M:00.000000", column)


def recount_launch(conn: Connection, launch_id: int | None = None) -> None:
    """Rebuild the counters of one launch (None: of every launch) from the records: what
    the migration that introduced them runs, and a repair for any counter out of step."""
    where_stats = [] if launch_id is None else [LaunchStat.launch_id == launch_id]
    conn.execute(delete(LaunchStat).where(*where_stats))
    device = func.coalesce(Delivery.device, "")
    bucket = _minute_sql(conn, Delivery.created_at)
    metric = case(
        (Delivery.state == "sent", literal(str(Metric.SENT))),
        else_=literal(DROPPED_PREFIX) + func.coalesce(Delivery.reason, "internalErrors"),
    )
    deliveries = select(
        Delivery.launch_id, bucket, metric, device, literal(0), func.count(), literal(0)
    ).group_by(Delivery.launch_id, bucket, metric, device)
    if launch_id is not None:
        deliveries = deliveries.where(Delivery.launch_id == launch_id)
    ebucket = _minute_sql(conn, Event.created_at)
    edevice = func.coalesce(Subscriber.device, "")
    events = (
        select(Event.launch_id, ebucket, Event.type, edevice, literal(0), func.count(), literal(0))
        .outerjoin(Subscriber, Subscriber.id == Event.subscriber_id)
        .where(Event.type.in_([str(Metric.DELIVERED), str(Metric.CLICKED)]))
        .group_by(Event.launch_id, ebucket, Event.type, edevice)
    )
    if launch_id is not None:
        events = events.where(Event.launch_id == launch_id)
    cbucket = _minute_sql(conn, Conversion.created_at)
    cdevice = func.coalesce(Subscriber.device, "")
    conversions = (
        select(
            Conversion.launch_id,
            cbucket,
            literal(str(Metric.CONVERSION)),
            cdevice,
            literal(0),
            func.count(),
            func.sum(Conversion.value),
        )
        .outerjoin(Subscriber, Subscriber.id == Conversion.subscriber_id)
        .group_by(Conversion.launch_id, cbucket, cdevice)
    )
    if launch_id is not None:
        conversions = conversions.where(Conversion.launch_id == launch_id)
    columns = ["launch_id", "bucket", "metric", "device", "shard", "count", "revenue"]
    for source in (deliveries, events, conversions):
        conn.execute(insert(LaunchStat).from_select(columns, source))
    _recount_variants(conn, launch_id)


def recount_all(conn: Connection) -> None:
    recount_launch(conn, None)


def launch_counts(conn: Connection, launch_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per launch, §2.5's counters from the same counters as the statistics: ``sent``,
    ``dropped``, ``event:delivered``, ``event:clicked``, ``conversion``."""
    counts: dict[int, dict[str, int]] = {int(i): {} for i in launch_ids}
    if not launch_ids:
        return counts
    for launch_id, metric, n in conn.execute(
        select(LaunchStat.launch_id, LaunchStat.metric, func.sum(LaunchStat.count))
        .where(LaunchStat.launch_id.in_(list(launch_ids)))
        .group_by(LaunchStat.launch_id, LaunchStat.metric)
    ).all():
        if metric.startswith(DROPPED_PREFIX):
            key = "dropped"
        elif metric in (Metric.DELIVERED, Metric.CLICKED):
            key = f"event:{metric}"
        else:
            key = metric
        bucket = counts[int(launch_id)]
        bucket[key] = bucket.get(key, 0) + int(n)
    return counts


# --- reading --------------------------------------------------------------------------------


def _range(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where = []
    if since is not None:
        where.append(LaunchStat.bucket >= since)
    if until is not None:
        where.append(LaunchStat.bucket < until)
    return where


_GROUPS: dict[str, Any] = {
    "campaign": Launch.campaign_id,
    "launch": LaunchStat.launch_id,
    "metric": LaunchStat.metric,
    "device": LaunchStat.device,
    "bucket": LaunchStat.bucket,
}


def sums(
    conn: Connection,
    partner_id: str,
    group: Sequence[str],
    *,
    campaign_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[Any, ...]]:
    """Counter totals of the partner's launches, grouped by ``group`` (names among
    campaign, launch, metric, device, bucket): rows of the group values, count, revenue.
    Scoped to the partner in the query: another partner's campaign ids match nothing."""
    columns = [_GROUPS[name] for name in group]
    stmt = (
        select(*columns, func.sum(LaunchStat.count), func.sum(LaunchStat.revenue))
        .join(Launch, Launch.id == LaunchStat.launch_id)
        .where(Launch.partner_id == partner_id, *_range(since, until))
        .group_by(*columns)
    )
    if campaign_ids is not None:
        stmt = stmt.where(Launch.campaign_id.in_(list(campaign_ids)))
    out = []
    for row in conn.execute(stmt).all():
        *keys, n, revenue = row
        keys = [_minute(k) if isinstance(k, datetime) else k for k in keys]
        out.append((*keys, int(n or 0), Decimal(revenue or 0)))
    return out


def bucket_sums(
    conn: Connection,
    partner_id: str,
    campaign_id: int,
    since: datetime | None,
    until: datetime | None,
) -> list[tuple[datetime, str, int]]:
    """Per minute and metric, one campaign's counters (the timeline)."""
    return [
        (bucket, metric, n)
        for bucket, metric, n, _ in sums(
            conn,
            partner_id,
            ("bucket", "metric"),
            campaign_ids=[campaign_id],
            since=since,
            until=until,
        )
    ]


def active_campaigns(
    conn: Connection,
    partner_id: str,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int,
) -> tuple[int, list[int]]:
    """The partner's campaigns with anything counted in the range, newest first: how
    many there are, and the ids of one page."""
    base = (
        select(Launch.campaign_id)
        .join(LaunchStat, LaunchStat.launch_id == Launch.id)
        .where(Launch.partner_id == partner_id, *_range(since, until))
    )
    total = conn.execute(
        select(func.count(distinct(Launch.campaign_id)))
        .select_from(Launch)
        .join(LaunchStat, LaunchStat.launch_id == Launch.id)
        .where(Launch.partner_id == partner_id, *_range(since, until))
    ).scalar_one()
    ids = conn.execute(
        base.group_by(Launch.campaign_id)
        .order_by(Launch.campaign_id.desc())
        .offset(offset)
        .limit(limit)
    ).scalars()
    return int(total), [int(i) for i in ids]


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: int
    title: str
    is_all: bool
    status: str
    created_at: datetime


def campaign_rows(conn: Connection, partner_id: str, ids: Sequence[int]) -> dict[int, CampaignRow]:
    """The partner's campaigns among ``ids`` (deleted ones included: their numbers stay)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(
            Campaign.id, Campaign.title, Campaign.is_all, Campaign.status, Campaign.created_at
        ).where(Campaign.partner_id == partner_id, Campaign.id.in_(list(ids)))
    ).all()
    return {int(r[0]): CampaignRow(*r) for r in rows}


@dataclass(frozen=True, slots=True)
class LaunchInfo:
    id: int
    campaign_id: int
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    ttl: int
    link: str | None
    button_links: tuple[str, ...] = ()  # the notification's action buttons, in order
    button_titles: tuple[str, ...] = ()  # their labels, in the same order
    # An A/B launch's arms: (title, description, split), in order.
    ab: tuple[tuple[str, str, int], ...] = ()


def launch_infos(
    conn: Connection, partner_id: str, campaign_ids: Sequence[int] | None = None
) -> list[LaunchInfo]:
    """The partner's launches (of these campaigns), oldest first."""
    stmt = (
        select(
            Launch.id,
            Launch.campaign_id,
            Launch.status,
            Launch.created_at,
            Launch.started_at,
            Launch.finished_at,
            Launch.request,
        )
        .where(Launch.partner_id == partner_id)
        .order_by(Launch.id)
    )
    if campaign_ids is not None:
        stmt = stmt.where(Launch.campaign_id.in_(list(campaign_ids)))
    out = []
    for lid, cid, status, created, started, finished, request in conn.execute(stmt).all():
        out.append(
            LaunchInfo(
                int(lid),
                int(cid),
                status,
                created,
                started,
                finished,
                int(request.get("ttl") or 0),  # type: ignore[call-overload]
                str(request["link"]) if request.get("link") else None,
                tuple(
                    str(action["link"])
                    for action in request.get("actions") or ()  # type: ignore[attr-defined]
                ),
                tuple(
                    str(action["title"])
                    for action in request.get("actions") or ()  # type: ignore[attr-defined]
                ),
                tuple(
                    (str(arm["title"]), str(arm["description"]), int(arm["split"]))
                    for arm in request.get("ab") or ()  # type: ignore[attr-defined]
                ),
            )
        )
    return out


def button_clicks(
    conn: Connection,
    partner_id: str,
    launch_ids: Sequence[int],
    since: datetime | None,
    until: datetime | None,
) -> dict[int, int]:
    """Clicks on action buttons of these launches in [since, until), by button index
    (``events.action``); clicks on the notification itself are not counted here."""
    if not launch_ids:
        return {}
    where = [
        Event.partner_id == partner_id,
        Event.launch_id.in_(list(launch_ids)),
        Event.type == "clicked",
        Event.action.is_not(None),
    ]
    if since is not None:
        where.append(Event.created_at >= since)
    if until is not None:
        where.append(Event.created_at < until)
    rows = conn.execute(
        select(Event.action, func.count()).where(*where).group_by(Event.action)
    ).all()
    return {int(action): int(count) for action, count in rows if action is not None}


def sent_per_launch_minute(
    conn: Connection,
    partner_id: str,
    campaign_ids: Sequence[int] | None,
    since: datetime | None,
    until: datetime | None,
) -> list[tuple[int, datetime, int]]:
    """(launch, minute, sent) — to tell sends whose TTL is over from those still live."""
    stmt = (
        select(LaunchStat.launch_id, LaunchStat.bucket, func.sum(LaunchStat.count))
        .join(Launch, Launch.id == LaunchStat.launch_id)
        .where(
            Launch.partner_id == partner_id,
            LaunchStat.metric == str(Metric.SENT),
            *_range(since, until),
        )
        .group_by(LaunchStat.launch_id, LaunchStat.bucket)
    )
    if campaign_ids is not None:
        stmt = stmt.where(Launch.campaign_id.in_(list(campaign_ids)))
    return [(int(lid), _minute(b), int(n)) for lid, b, n in conn.execute(stmt).all()]


def type_sums(
    conn: Connection, partner_id: str, since: datetime | None, until: datetime | None
) -> list[tuple[bool, str, int, Decimal]]:
    """Counter totals of all the partner's launches per campaign type (``is_all``) and
    metric, summed by the database: a handful of rows whatever the number of campaigns
    (top-metrics)."""
    stmt = (
        select(
            Campaign.is_all,
            LaunchStat.metric,
            func.sum(LaunchStat.count),
            func.sum(LaunchStat.revenue),
        )
        .join(Launch, Launch.id == LaunchStat.launch_id)
        .join(Campaign, Campaign.id == Launch.campaign_id)
        .where(Launch.partner_id == partner_id, *_range(since, until))
        .group_by(Campaign.is_all, LaunchStat.metric)
    )
    return [
        (bool(is_all), metric, int(n or 0), Decimal(str(revenue or 0)))
        for is_all, metric, n, revenue in conn.execute(stmt).all()
    ]


def _epoch_sql(conn: Connection, column: Any) -> ColumnElement[Any]:
    """Seconds since 1970 of a stored UTC instant."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", column)
    return cast(func.strftime("%s", column), Integer)


@dataclass(frozen=True, slots=True)
class LaunchTotals:
    """One launch's counters in a range, as top-metrics' undelivered split needs them."""

    launch_id: int
    campaign_id: int
    is_all: bool
    sent: int
    delivered: int
    sent_expired: int  # sends whose minute and TTL are over at ``now``


def launch_totals(
    conn: Connection,
    partner_id: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> list[LaunchTotals]:
    """Per launch of the partner with anything counted in the range: its campaign and
    type, its sent and delivered, and the sends whose TTL is over (a minute's sends count
    once the minute's last second plus the launch's TTL is past). The undelivered split
    is per launch (one launch's delivered reports cannot make up for another's), so it
    needs one row per launch; the database works the expiry out, so the rows do not grow
    with the minutes a launch was active."""
    ttl = func.coalesce(Launch.request["ttl"].as_integer(), 0)
    expired = and_(
        LaunchStat.metric == str(Metric.SENT),
        _epoch_sql(conn, LaunchStat.bucket) + 60 + ttl <= now.timestamp(),
    )
    stmt = (
        select(
            LaunchStat.launch_id,
            func.max(Launch.campaign_id),
            func.max(case((Campaign.is_all, 1), else_=0)),
            func.sum(case((LaunchStat.metric == str(Metric.SENT), LaunchStat.count), else_=0)),
            func.sum(case((LaunchStat.metric == str(Metric.DELIVERED), LaunchStat.count), else_=0)),
            func.sum(case((expired, LaunchStat.count), else_=0)),
        )
        .join(Launch, Launch.id == LaunchStat.launch_id)
        .join(Campaign, Campaign.id == Launch.campaign_id)
        .where(Launch.partner_id == partner_id, *_range(since, until))
        .group_by(LaunchStat.launch_id)
    )
    return [
        LaunchTotals(int(lid), int(cid), bool(is_all), int(sent), int(delivered), int(old))
        for lid, cid, is_all, sent, delivered, old in conn.execute(stmt).all()
    ]


# --- conversions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversionSettings:
    currency: str
    attribution_hours: int


def conversion_settings(conn: Connection, partner_id: str) -> ConversionSettings | None:
    row = conn.execute(
        select(Partner.currency, Partner.attribution_hours).where(Partner.id == partner_id)
    ).one_or_none()
    return None if row is None else ConversionSettings(row[0], int(row[1]))


def set_conversion_settings(conn: Connection, partner_id: str, values: dict[str, Any]) -> bool:
    if not values:
        return conn.execute(select(Partner.id).where(Partner.id == partner_id)).first() is not None
    return (
        conn.execute(update(Partner).where(Partner.id == partner_id).values(**values)).rowcount == 1
    )


def click_time(conn: Connection, launch_id: int, subscriber_id: int) -> datetime | None:
    found = conn.execute(
        select(Event.created_at).where(
            Event.launch_id == launch_id,
            Event.subscriber_id == subscriber_id,
            Event.type == str(Metric.CLICKED),
        )
    ).scalar_one_or_none()
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found


def insert_conversion(
    conn: Connection,
    *,
    partner_id: str,
    launch_id: int,
    subscriber_id: int,
    order_id: str | None,
    value: Decimal,
    currency: str,
    now: datetime,
) -> None:
    """Record a conversion; a second one for the same (launch, subscriber) without order
    id, or for the same (partner, order id), raises ``IntegrityError`` from the partial
    unique indexes: the caller refuses it."""
    conn.execute(
        insert(Conversion).values(
            partner_id=partner_id,
            launch_id=launch_id,
            subscriber_id=subscriber_id,
            order_id=order_id,
            value=value,
            currency=currency,
            created_at=now,
        )
    )
