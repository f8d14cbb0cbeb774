"""local-time launches and silent hours that defer

``launch_batches.not_before``: a batch is not claimed (nor handed to the broker) before
it. ``launch_batches.send_until``: a local-time batch's window; a subscriber reached
later is dropped (``localTimeMissed``). ``launch_batches.subset``: which of the range's
subscribers the batch holds (JSON: ``{"tz_in": [...]}``, ``{"tz_not_in": [...]}`` or
``{"ids": [...]}``). ``partners.default_timezone`` (NULL: UTC) and
``partners.silent_hours_mode`` (``drop`` or ``defer``). NULL batch columns and ``drop``
for existing rows: they behave as before.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "launch_batches", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "launch_batches", sa.Column("send_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("launch_batches", sa.Column("subset", sa.JSON(), nullable=True))
    op.add_column("partners", sa.Column("default_timezone", sa.String(64), nullable=True))
    op.add_column(
        "partners",
        sa.Column("silent_hours_mode", sa.String(8), nullable=False, server_default="drop"),
    )


def downgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("silent_hours_mode")
        batch.drop_column("default_timezone")
    with op.batch_alter_table("launch_batches") as batch:
        batch.drop_column("subset")
        batch.drop_column("send_until")
        batch.drop_column("not_before")
