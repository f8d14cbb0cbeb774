"""All configuration in one typed place, read from the environment (``PUSHCAMP_*``).

Everything takes a :class:`Settings`; the only other ``PUSHCAMP_*`` variables read are
``PUSHCAMP_CLOCK_OFFSET_SECONDS`` (pushcamp/clock.py, a testing aid) and
``PUSHCAMP_DEMO_DIR`` (pushcamp/demo.py, where ``pushcamp demo`` keeps its files).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "pushcamp.db"


class Settings(BaseSettings):
    """Server settings. Every field maps to ``PUSHCAMP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PUSHCAMP_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_FILE}",
        description="SQLAlchemy URL; a SQLite file in the working directory by default, "
        "postgresql://user@host/db for production.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Unset: rate limits live in the process. Set (redis://host:6379/0): "
        "shared by every API process (docs/scaling.md).",
    )
    # Redis calls taking longer than this (connect or answer) fail the request with 424.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # Prefix of every key pushcamp writes in Redis (several installations may share one).
    redis_key_prefix: str = "pushcamp:"
    push_allowed_hosts: str = Field(
        default="", description="Comma-separated extra push-service hosts (host or host:port)."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Bodies above this are refused with 413 before they are read whole.
    max_body_bytes: int = 64 * 1024
    # Defaults for new partners (requests per rolling 60 s window).
    default_v1_limit: int = 30
    default_v2_limit: int = 6000
    # How long a running server may keep trusting a token it has checked (revocations
    # and limit changes take effect within this); 0 checks the database every time.
    auth_cache_seconds: float = 2.0
    # How long a database call may take before the request gets 424.
    db_timeout_seconds: float = 5.0
    # Delivery (the fan-out engine). In the embedded default it runs inside the server.
    delivery_in_process: bool = Field(
        default=True,
        description="Without a broker, run the fan-out engine inside the API server process; "
        "false requires PUSHCAMP_BROKER_URL (with one, the server never sends).",
    )
    delivery_workers: int = Field(default=4, ge=1, le=64, description="Batches sent at once.")
    delivery_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A claimed batch whose worker went silent this long is taken again.",
    )
    delivery_per_host: int = Field(
        default=200, ge=1, description="Requests in flight per push service."
    )
    # Scaled-out delivery (docs/scaling.md): set, the API only records launches and the
    # outbox hands their batches to this Celery broker (redis://... or amqp://...);
    # ``pushcamp worker`` processes send them. In-process delivery is then not used.
    broker_url: str | None = Field(
        default=None,
        description="Celery broker for `pushcamp worker` (redis:// or amqp://); unset: "
        "delivery runs in the API process.",
    )
    # Redis broker: a task not acknowledged this long after a worker took it is handed
    # to another worker. Keep it above the longest batch takes to send.
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=60)
    # A batch still pending this long after it was published (its task lost with a
    # broker's data) is published again.
    broker_republish_seconds: float = Field(default=600.0, ge=5)
    # Connecting to and publishing on the broker gives up after this (then retried).
    broker_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # The queue batches are published to: one per installation sharing a broker.
    broker_queue: str = Field(default="pushcamp.batches", pattern=r"^[A-Za-z0-9._:-]{1,200}$")
    # The sender's bounds on a push service that fails: tries per message (429, 5xx,
    # resets, timeouts), the longest Retry-After honoured (a longer one is given up on at
    # once), the time a push service has to answer one request.
    delivery_max_attempts: int = Field(default=4, ge=1, le=20)
    delivery_max_retry_after_seconds: float = Field(default=60.0, ge=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    # On shutdown (SIGTERM), how long the pushes already posted get to be answered and
    # recorded before the rest is abandoned (they are then sent again after a restart).
    delivery_drain_seconds: float = Field(default=15.0, ge=0)
    vapid_subject: str = Field(
        default="mailto:push@pushcamp.dev",
        description="VAPID contact (RFC 8292) push services see: your own mailto: or https: URL.",
    )
    # Where browsers reach this server (https://push.example.com), for the absolute URLs
    # the SDK is given; unset: the URL each request came in on.
    public_url: str | None = None
    # Public (browser-facing) endpoints: requests per rolling minute per client address,
    # per endpoint, and their body limit.
    public_per_ip_limit: int = Field(default=600, ge=1)
    public_max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # Panel sign-in attempts per rolling minute per client address (a brute-force guard).
    panel_login_per_ip_limit: int = Field(default=10, ge=1)
    # The HTTP layer's limits against hostile clients (docs/security.md): request line
    # and headers must arrive within header_timeout_seconds of connecting (or of the
    # previous response), the body within body_timeout_seconds after them; an idle
    # keep-alive connection is closed after keep_alive_seconds; a connection accepted
    # while max_connections are open gets 503 at once.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    max_connections: int = Field(default=1000, ge=1)
    # Host header values trusted to build public URLs when PUSHCAMP_PUBLIC_URL is unset
    # (comma-separated host names, any port); the listen host, 127.0.0.1, localhost and
    # [::1] always are. A request using another Host where a public URL is needed: 400.
    allowed_hosts: str = ""
    # Webhooks (docs/webhooks.md): hosts (host or host:port) a webhook may point at even
    # on a private or loopback address, and with plain http (comma-separated; for a
    # receiver on the operator's own network, or tests). Others: https, public addresses.
    webhook_allowed_hosts: str = ""
    # The waits (seconds) before the 2nd, 3rd, ... attempt of a failed event (the last
    # repeats, each stretched by up to 25 % of jitter), and how long after its first
    # attempt an event is given up on (the dead-letter list).
    webhook_backoff_seconds: str = Field(
        default="10,30,120,600,1800,3600,7200,14400", pattern=r"^[0-9.]+(,[0-9.]+)*$"
    )
    webhook_max_age_seconds: float = Field(default=86400.0, gt=0)
    # Time a receiver has to answer one POST; events per POST; dispatcher poll.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    log_level: str = "INFO"
    # True: one JSON object per line; False: readable lines; unset: JSON unless stderr is
    # a terminal (earlier versions always wrote JSON: set true to keep that everywhere).
    log_json: bool | None = None

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        """Accept the libpq-style ``postgresql://`` and pick the psycopg 3 driver."""
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError(
                "PUSHCAMP_PUBLIC_URL must be an http(s) URL, e.g. https://push.example.com"
            )
        return value.rstrip("/")

    def delivery_problem(self) -> str | None:
        """Why no launch would ever be sent under these settings, or None."""
        if not self.delivery_in_process and not self.broker_url:
            return (
                "PUSHCAMP_DELIVERY_IN_PROCESS is false and PUSHCAMP_BROKER_URL is unset: "
                "nothing would ever send a launch. Set PUSHCAMP_BROKER_URL (and run "
                "`pushcamp worker`), or leave in-process delivery on"
            )
        if self.broker_url and not self.broker_url.startswith(
            ("redis://", "rediss://", "amqp://", "amqps://")
        ):
            return "PUSHCAMP_BROKER_URL must be a redis://, rediss://, amqp:// or amqps:// URL"
        return None

    def redacted_broker_url(self) -> str | None:
        """The broker URL with any password removed, safe to print and log."""
        if not self.broker_url:
            return None
        from kombu.utils.url import maybe_sanitize_url

        return str(maybe_sanitize_url(self.broker_url))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def allowed_push_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.push_allowed_hosts.split(",") if h.strip())

    @property
    def allowed_webhook_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip()
        )

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """Host names (lower case, IPv6 in brackets, no port) a request's Host may name."""
        names = {"127.0.0.1", "localhost", "[::1]", _bracketed(self.host.lower())}
        names.update(_bracketed(h.strip().lower()) for h in self.allowed_hosts.split(","))
        names.discard("")
        return frozenset(names)

    def redacted_database_url(self) -> str:
        """The database URL with any password removed, safe to print and log."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.drivername.startswith("sqlite") and url.database:
            return f"sqlite:///{Path(url.database).resolve()}"
        return url.render_as_string(hide_password=True)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
