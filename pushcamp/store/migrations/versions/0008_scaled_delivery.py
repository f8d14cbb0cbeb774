"""scaled-out delivery: what a runner decides on lives in the database

* ``launches.events_url``: where the notifications' service worker reports events,
  fixed when the launch is recorded (``PUSHCAMP_PUBLIC_URL``), not taken from whichever
  process happens to send a batch;
* ``launches.attempts`` and ``launch_refusals``: the pause counters (messages tried, and
  refusals that say the sender is wrong, by status and reason), updated in the same
  transaction as each group of delivery records, so every worker pauses a launch
  together;
* ``launch_batches.published_at``: the outbox mark, when a batch was last handed to the
  broker (NULL: not yet, or to be handed again).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("launches") as batch:
        batch.add_column(sa.Column("events_url", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("launch_batches") as batch:
        batch.add_column(sa.Column("published_at", Stamp, nullable=True))
    op.create_table(
        "launch_refusals",
        sa.Column("launch_id", BigId, nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["launch_id"],
            ["launches.id"],
            name=op.f("fk_launch_refusals_launch_id_launches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("launch_id", "reason", name=op.f("pk_launch_refusals")),
    )


def downgrade() -> None:
    op.drop_table("launch_refusals")
    with op.batch_alter_table("launch_batches") as batch:
        batch.drop_column("published_at")
    with op.batch_alter_table("launches") as batch:
        batch.drop_column("attempts")
        batch.drop_column("events_url")
