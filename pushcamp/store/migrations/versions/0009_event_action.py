"""event action: which button of a notification a click was on

``events.action``: for a ``clicked`` event, the index (0 or 1) of the action button the
subscriber clicked (launches with ``actions``, docs/delivery.md); NULL for a click on the
notification itself and for every other event type. Existing rows are clicks on the
notification (pushcamp had no buttons before), so NULL is right for all of them.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("action", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("action")
