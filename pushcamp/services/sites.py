"""A partner's site settings: the origins allowed to call the public endpoints, the
audience rules, and a short-lived cache the public endpoints read them through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pushcamp.domain import sites as rules
from pushcamp.domain.local_time import zone_or_none
from pushcamp.errors import InvalidRequest, NotFound
from pushcamp.store import Database
from pushcamp.store import partners as partner_queries
from pushcamp.store import sites as q
from pushcamp.store.partners import SiteSettings
from pushcamp.store.sites import AudienceSettings

_MAX_CACHED = 10_000


class SiteDirectory:
    """Site settings by partner id, each kept ``ttl`` seconds (``partners set-site`` takes
    effect on a running server within that). Unknown partners are cached too, so a flood
    of made-up partner ids costs one query per id per ``ttl``, not one per request."""

    def __init__(
        self, db: Database, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, SiteSettings | None]] = {}
        self._lock = threading.Lock()

    def cached(self, partner_id: str) -> tuple[bool, SiteSettings | None]:
        """(True, settings) when a fresh entry is at hand; (False, None) otherwise. Cheap
        enough to call on the event loop."""
        entry = self._entries.get(partner_id)
        if entry is not None and entry[0] > self._clock():
            return True, entry[1]
        return False, None

    def get(self, partner_id: str) -> SiteSettings | None:
        """The partner's site settings (None: no such partner); blocking."""
        found, site = self.cached(partner_id)
        if found:
            return site
        with self._db.read() as conn:
            site = partner_queries.get_site_settings(conn, partner_id)
        if self._ttl > 0:
            with self._lock:
                if len(self._entries) >= _MAX_CACHED:
                    self._entries.clear()
                self._entries[partner_id] = (self._clock() + self._ttl, site)
        return site


def set_site_origins(db: Database, partner_id: str, origins: list[str]) -> list[str]:
    """Replace the origins allowed to call the public endpoints from a browser."""
    canonical = rules.check_origins(origins)
    with db.write() as conn:
        if not partner_queries.set_site_origins(conn, partner_id, canonical):
            raise NotFound(f"no partner {partner_id!r}")
    return canonical


def site_origins(db: Database) -> dict[str, list[str]]:
    with db.read() as conn:
        return q.site_origins_by_partner(conn)


def set_audience(
    db: Database,
    partner_id: str,
    *,
    engagement_days: int | None = None,
    frequency_cap: int | None = None,
    no_frequency_cap: bool = False,
    silent_hours: str | None = None,
    no_silent_hours: bool = False,
    silent_hours_mode: str | None = None,
    default_timezone: str | None = None,
) -> AudienceSettings:
    """Change some of the partner's audience rules; the others stay as they are.
    ``silent_hours_mode``: ``drop`` or ``defer``; ``default_timezone``: an IANA zone for
    subscribers whose own is unknown (local-time launches)."""
    if frequency_cap is not None and no_frequency_cap:
        raise InvalidRequest.of("frequency_cap", "give a cap or turn it off, not both")
    if silent_hours is not None and no_silent_hours:
        raise InvalidRequest.of("silent_hours", "give silent hours or turn them off, not both")
    values: dict[str, int | str | None] = {}
    if silent_hours_mode is not None:
        if silent_hours_mode not in ("drop", "defer"):
            raise InvalidRequest.of("silent_hours_mode", "must be drop or defer")
        values["silent_hours_mode"] = silent_hours_mode
    if default_timezone is not None:
        if zone_or_none(default_timezone) is None:
            raise InvalidRequest.of(
                "default_timezone", "must be an IANA time zone, like Europe/Berlin or UTC"
            )
        values["default_timezone"] = default_timezone
    if engagement_days is not None:
        values["engagement_days"] = rules.check_engagement_days(engagement_days)
    if frequency_cap is not None:
        values["frequency_cap"] = rules.check_frequency_cap(frequency_cap)
    elif no_frequency_cap:
        values["frequency_cap"] = None
    if silent_hours is not None:
        hours = rules.parse_silent_hours(silent_hours)
        values["silent_start"], values["silent_end"] = hours.start, hours.end
    elif no_silent_hours:
        values["silent_start"] = values["silent_end"] = None
    with db.write() as conn:
        if not q.update_audience(conn, partner_id, values):
            raise NotFound(f"no partner {partner_id!r}")
        audience = q.get_audience(conn, partner_id)
    assert audience is not None
    return audience
