"""subscribers vouched for as senders (pause rules)

A push service's 401/403 says the *sender* is wrong only when it comes from a
subscription known to be good: one that accepted a push from the partner before
(``first_accepted_at``) or that the operator imported (``imported_at``). Junk registered
through the public endpoint has neither, so it cannot pause a launch.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("first_accepted_at", Stamp, nullable=True))
        batch.add_column(sa.Column("imported_at", Stamp, nullable=True))
    # Subscriptions that already accepted a push before this migration are vouched for.
    op.execute(
        "UPDATE subscribers SET first_accepted_at = ("
        "SELECT MIN(d.created_at) FROM deliveries d "
        "WHERE d.subscriber_id = subscribers.id AND d.state = 'sent')"
    )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("imported_at")
        batch.drop_column("first_accepted_at")
