"""scheduled and throttled launches

``launches.not_before``: a launch with ``send_at`` is recorded ``Scheduled`` and starts
at this time (its batch plan is written then). ``launches.max_per_minute`` and
``launches.next_send_at``: a throttled launch's rate and the start of its next free send
slot, shared by every worker. NULL in all three for existing launches: they behave as
before. ``ix_launches_due`` finds the due ones.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("launches", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column("launches", sa.Column("max_per_minute", sa.Integer(), nullable=True))
    op.add_column("launches", sa.Column("next_send_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_launches_due", "launches", ["status", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_launches_due", table_name="launches")
    with op.batch_alter_table("launches") as batch:
        batch.drop_column("next_send_at")
        batch.drop_column("max_per_minute")
        batch.drop_column("not_before")
