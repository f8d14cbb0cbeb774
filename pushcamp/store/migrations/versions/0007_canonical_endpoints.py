"""canonical subscription endpoints

Endpoints stored before the canonical-endpoint rule keep the spelling the browser (or an
import) gave: ``HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/x``. Every lookup now
canonicalises first, so such a row is never found again, and the same browser
subscribing would make a second row. This rewrites them to the canonical spelling.

Several rows of one partner may be spellings of one endpoint (one browser). One of them
is kept, the most recently updated active one (else the most recently updated): it takes
the canonical spelling and keeps its id, which delivery records, events and conversions
point at. The others become inactive with the reason "merged" (those already inactive
keep their reason); nothing is deleted and nothing is moved between rows. The unique
index on ``(partner_id, endpoint)`` allows one row per spelling, so a merged row keeps
a spelling of its own: its old one, or, when it was the row holding the canonical
spelling, the kept row's old one. Lookups canonicalise, so a merged row is never found.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MERGED = "merged"
_PAGE = 5000

_subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.BigInteger()),
    sa.column("partner_id", sa.String(64)),
    sa.column("endpoint", sa.Text()),
    sa.column("active", sa.Boolean()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("deactivated_at", sa.DateTime(timezone=True)),
    sa.column("deactivated_reason", sa.String(32)),
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def canonical(url: str) -> str:
    """The canonical spelling of an endpoint: scheme and host in lower case, no trailing
    dot on the host, no explicit default port; path and query as given; anything that
    is not an absolute URL unchanged.

    A frozen copy of ``pushcamp.domain.subscribers.canonical_endpoint`` as it was when
    this migration was written, on purpose: a migration must do the same thing whatever
    the application's code becomes later, so it never imports it. (A test checks that
    the two still agree; if the rule changes, a new migration applies the new rule.)
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme
    prefix = f"{scheme}://{parts.netloc}"
    if not parts.netloc or url[: len(prefix)].lower() != prefix.lower():
        return url
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{url[len(prefix) :]}"


def _non_canonical(conn: sa.Connection) -> dict[tuple[str, str], list[int]]:
    """The ids of the rows not spelled canonically, by (partner, canonical endpoint).

    The whole table is read in pages by id (no page holds a long lock or meets the
    statement timeout); only the non-canonical rows are kept, and those are few:
    browsers hand out canonical endpoints, odd spellings came from imports and tests.
    """
    s = _subscribers.c
    found: dict[tuple[str, str], list[int]] = {}
    after = 0
    while True:
        page = conn.execute(
            sa.select(s.id, s.partner_id, s.endpoint)
            .where(s.id > after)
            .order_by(s.id)
            .limit(_PAGE)
        ).all()
        if not page:
            return found
        for row_id, partner_id, endpoint in page:
            spelled = canonical(endpoint)
            if spelled != endpoint:
                found.setdefault((partner_id, spelled), []).append(row_id)
        after = page[-1].id


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive UTC times, PostgreSQL aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _set_endpoint(conn: sa.Connection, row_id: int, endpoint: str) -> None:
    s = _subscribers.c
    conn.execute(_subscribers.update().where(s.id == row_id).values(endpoint=endpoint))


def _merge(
    conn: sa.Connection, partner_id: str, spelled: str, ids: list[int], now: datetime
) -> None:
    """Give one browser's rows (``ids``, plus the row already spelled ``spelled`` if any)
    one active row under the canonical spelling."""
    s = _subscribers.c
    rows = conn.execute(
        sa.select(s.id, s.endpoint, s.active, s.updated_at).where(
            s.partner_id == partner_id, sa.or_(s.id.in_(ids), s.endpoint == spelled)
        )
    ).all()
    kept = max(rows, key=lambda r: (bool(r.active), _utc(r.updated_at), r.id))
    holder = next((r for r in rows if r.endpoint == spelled), None)
    if holder is not None and holder.id != kept.id:
        # Swap spellings without ever having two rows with one endpoint (the unique index
        # is checked row by row on PostgreSQL): the kept row moves aside to a spelling no
        # stored endpoint can have (a fragment is refused at subscribe), the holder takes
        # the kept row's old spelling, the kept row the canonical one.
        _set_endpoint(conn, kept.id, f"{kept.endpoint}#0007-{kept.id}")
        _set_endpoint(conn, holder.id, kept.endpoint)
    if kept.endpoint != spelled:
        _set_endpoint(conn, kept.id, spelled)
    merged = [r.id for r in rows if r.id != kept.id and r.active]
    if merged:
        conn.execute(
            _subscribers.update()
            .where(s.id.in_(merged))
            .values(active=False, deactivated_at=now, deactivated_reason=MERGED, updated_at=now)
        )


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    for (partner_id, spelled), ids in _non_canonical(conn).items():
        _merge(conn, partner_id, spelled, ids, now)


def downgrade() -> None:
    # Nothing to undo: the canonical spelling is a spelling of the same address, and the
    # merged rows were duplicates of the kept ones.
    pass
