"""The schema, as SQLAlchemy 2.0 models. Migrations in ``migrations/`` create it; the
models are the single description queries are written against."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pushcamp import clock

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, from pushcamp's one clock (pushcamp/clock.py; tests can move it)."""
    return clock.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Partner(Base):
    """A customer account (tenant). Its id is chosen at creation, e.g. ``"100000001"``."""

    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    v1_limit: Mapped[int] = mapped_column(Integer)
    v2_limit: Mapped[int] = mapped_column(Integer)
    default_icon: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The site origins (``https://shop.example``) allowed to call the public subscriber
    # endpoints from a browser (CORS). Empty: no browser origin is allowed.
    site_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Subscribers with no click and no visit within this many days are "unengaged".
    engagement_days: Mapped[int] = mapped_column(Integer, default=90)
    # At most this many pushes per subscriber per 24 h; None: no cap.
    frequency_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Silent hours in the subscriber's local time, minutes after midnight; None: off.
    # start > end wraps midnight (22:00-07:00).
    silent_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    silent_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # ``drop``: a subscriber in silent hours is dropped (``silentHours``); ``defer``: sent
    # when the silent hours end, if that is within the launch's TTL (docs/delivery.md).
    silent_hours_mode: Mapped[str] = mapped_column(String(8), default="drop", server_default="drop")
    # The IANA zone of subscribers whose own zone is unknown (local-time launches);
    # None: UTC.
    default_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # HMAC key for the per-delivery event tokens (services/events.py). Never returned.
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Conversions (statistics): the one currency their values are in, and how long after
    # a click a conversion is still attributed to the clicked launch.
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    attribution_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")


class ApiToken(Base):
    """An API token: only its SHA-256 is kept; ``prefix`` names it without revealing it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class VapidKey(Base):
    """The partner's VAPID key pair (P-256), base64url: the public key as the uncompressed
    point the browser takes as ``applicationServerKey``, the private key as its 32-byte
    scalar. The private key is read only by the sender; it is never logged or returned."""

    __tablename__ = "vapid_keys"

    partner_id: Mapped[str] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    public_key: Mapped[str] = mapped_column(String(100))
    private_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """A campaign. Titles are unique among a partner's campaigns that are not deleted,
    by a partial unique index, so that two racing creates cannot both win."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No index of its own: the unique (partner_id, title) index serves lookups by partner.
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    is_all: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(
            "uq_campaigns_live_title",
            "partner_id",
            "title",
            unique=True,
            postgresql_where=deleted_at.is_(None),
            sqlite_where=deleted_at.is_(None),
        ),
    )


class Subscriber(Base):
    """One browser push subscription of a partner's site. ``(partner_id, endpoint)`` is
    unique: subscribing the same endpoint again updates the row. A subscription the push
    service called gone (404/410) or that the browser unsubscribed is kept, inactive."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    browser: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_engaged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Why it became inactive: "unsubscribed", "gone" (push service 404/410), "replaced",
    # "merged" (a duplicate spelling of a kept row, migration 0007).
    deactivated_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Vouched for (docs/delivery.md, pausing): the first time the push service accepted a
    # push to it, and when the operator imported it. Either makes its 401/403 a sign that
    # the sender is wrong; a public subscription with neither cannot pause a launch.
    first_accepted_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    imported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("uq_subscribers_partner_endpoint", "partner_id", "endpoint", unique=True),
        # The audience is read in keyset pages: active subscribers of a partner by id.
        Index("ix_subscribers_audience", "partner_id", "active", "id"),
    )


class Event(Base):
    """What a service worker reported about one push: ``delivered``, ``clicked`` or
    ``closed``, at most once per (launch, subscriber, type) — a replayed event hits the
    unique index and is counted nowhere."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    launch_id: Mapped[int] = mapped_column(BigInteger)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    # A click on an action button: its index (0 or 1); NULL for the notification itself.
    action: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("uq_events_once", "launch_id", "subscriber_id", "type", unique=True),
        Index("ix_events_partner_time", "partner_id", "created_at"),
    )


class Launch(Base):
    """One launch of a campaign. Written in the same transaction as its batch plan (the
    outbox), so a launch that was answered 200 is never lost. ``once`` is true for an
    ``is_all`` campaign: a partial unique index lets only one such launch exist."""

    __tablename__ = "launches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    once: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    # The validated launch request (domain.launches.LaunchRequest as a dict).
    request: Mapped[dict[str, object]] = mapped_column(JSON)
    topic: Mapped[str] = mapped_column(String(32))
    batches_total: Mapped[int] = mapped_column(Integer, default=0)
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Where the notifications' service worker reports events, fixed at launch time (0008).
    events_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Messages of this launch tried by every worker since it last started or resumed
    # (the pause rule's denominator; its refusals are in launch_refusals).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A scheduled launch (``send_at``, 0010): not started before this time; its batch
    # plan is written when it becomes due. NULL: start at once.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A throttled launch (``max_per_minute``, 0010): the send rate every worker together
    # keeps, and the start of the next free send slot (advanced atomically by whichever
    # worker takes a slot). NULL: as fast as the push services take it.
    max_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(
            "uq_launches_once",
            "campaign_id",
            unique=True,
            postgresql_where=once.is_(True),
            sqlite_where=once.is_(True),
        ),
        Index("ix_launches_campaign", "campaign_id", "id"),
        # A partner's launches, for the statistics spanning all its campaigns (0005).
        Index("ix_launches_partner", "partner_id", "campaign_id"),
        # Scheduled launches by due time (the runners look for due ones every poll).
        Index("ix_launches_due", "status", "not_before"),
    )


class LaunchBatch(Base):
    """A slice of a launch's audience: the partner's subscribers with ``lo <= id <= hi``
    (ids taken when the launch was recorded). A worker claims a batch, sends, records
    deliveries, then marks it done; a claim whose lease ran out (the worker died) is
    taken again, and the subscribers already recorded are skipped."""

    __tablename__ = "launch_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    launch_id: Mapped[int] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"))
    lo: Mapped[int] = mapped_column(BigInteger)
    hi: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The outbox mark (Celery runner): when the batch was last handed to the broker;
    # NULL: not yet, or to be handed again (given back after a pause or a stop).
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Not claimed (nor published) before this (local-time batches, deferred sends); None:
    # at once. ``send_until``: a local-time batch's window end (later: dropped).
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    send_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Which of the range's subscribers the batch holds (None: all): {"tz_in": [...]},
    # {"tz_not_in": [...]} (NULL zones included) or {"ids": [...]} (deferred sends).
    subset: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        Index("ix_launch_batches_status", "status", "id"),
        Index("ix_launch_batches_launch", "launch_id", "status"),
    )


class LaunchRefusal(Base):
    """The pause rule's counters of one launch: refusals that say the sender is wrong
    (``domain.launches.counts_towards_pause``), by status and the push service's reason.
    Written with the delivery records, so every worker sees the same counts."""

    __tablename__ = "launch_refusals"

    launch_id: Mapped[int] = mapped_column(
        ForeignKey("launches.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """What became of one subscriber in one launch: ``sent`` (the push service accepted
    it) or ``dropped`` with its reason. Written only once the outcome is known — never
    when a batch is merely fetched — and unique per (launch, subscriber)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    launch_id: Mapped[int] = mapped_column(BigInteger)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    partner_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The A/B arm (0-3) the subscriber got; NULL for a launch without an A/B test.
    variant: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)

    __table_args__ = (
        Index("uq_deliveries_once", "launch_id", "subscriber_id", unique=True),
        Index("ix_deliveries_launch_state", "launch_id", "state"),
        # The frequency cap counts a subscriber's recent pushes.
        Index("ix_deliveries_subscriber_time", "subscriber_id", "created_at"),
    )


class IdempotencyKey(Base):
    """A launch request's ``Idempotency-Key``, per partner, with the response it got."""

    __tablename__ = "idempotency_keys"

    partner_id: Mapped[str] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PanelSession(Base):
    """A signed-in panel browser. The cookie holds a random id; only its SHA-256 is kept,
    so a copy of the database opens no session. A session belongs to the API token it was
    opened with: revoking the token ends it."""

    __tablename__ = "panel_sessions"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    # Put in a hidden field of every form; a POST without it is refused (CSRF).
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_panel_sessions_expires", "expires_at"),)


class LaunchStat(Base):
    """Statistics counters, kept in the transaction that writes what they count: delivery
    records by state and drop reason, and delivered/clicked/conversion events, per launch,
    minute (``bucket``, UTC), metric and device (``""`` when unknown). ``shard`` spreads
    concurrent writers of one launch over several rows (PostgreSQL row locks); readers
    sum over it. See docs/statistics.md."""

    __tablename__ = "launch_stats"

    launch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    device: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[object] = mapped_column(Numeric(20, 4))


class LaunchVariantStat(Base):
    """The counters of an A/B launch per arm (``variant``, 0-3), minute and metric
    (``targeted``, ``sent``, ``delivered``, ``clicked``), kept like ``launch_stats`` in the
    transaction that writes what they count. See docs/statistics.md."""

    __tablename__ = "launch_variant_stats"

    launch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variant: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class Conversion(Base):
    """A purchase on the partner's site attributed to a clicked push (contract §2.4, §3).
    At most one per (launch, subscriber) without an order id, and one per (partner,
    order id) with one: both enforced by partial unique indexes."""

    __tablename__ = "conversions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    launch_id: Mapped[int] = mapped_column(BigInteger)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[object] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index(
            "uq_conversions_once",
            "launch_id",
            "subscriber_id",
            unique=True,
            postgresql_where=order_id.is_(None),
            sqlite_where=order_id.is_(None),
        ),
        Index(
            "uq_conversions_order",
            "partner_id",
            "order_id",
            unique=True,
            postgresql_where=order_id.isnot(None),
            sqlite_where=order_id.isnot(None),
        ),
    )


class Webhook(Base):
    """A URL of the partner's own systems that pushcamp POSTs its events to, signed with
    the webhook's secret (HMAC-SHA256; docs/webhooks.md)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_webhooks_partner", "partner_id"),)


class WebhookEvent(Base):
    """The webhooks' outbox: one event for one webhook, written in the same transaction
    as what it reports. ``pending`` until a POST of a batch holding it is answered 2xx
    (``done``), or until its retries ran out (``dead``: the dead-letter list)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # What the receiver de-duplicates on (the same for every webhook the event goes to).
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_webhook_events_webhook", "webhook_id", "status", "id"),
    )
