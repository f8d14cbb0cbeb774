"""A/B tests: the arm of each delivery and the counters per arm

``deliveries.variant``: the A/B arm (0-3) a subscriber got, NULL for launches without an
A/B test (every existing row). ``launch_variant_stats``: counters per launch, arm, minute
and metric, kept like ``launch_stats`` (docs/statistics.md); no existing launch has arms,
so it starts empty.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("variant", sa.SmallInteger(), nullable=True))
    op.create_table(
        "launch_variant_stats",
        sa.Column("launch_id", sa.BigInteger(), nullable=False),
        sa.Column("variant", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "launch_id",
            "variant",
            "bucket",
            "metric",
            "shard",
            name=op.f("pk_launch_variant_stats"),
        ),
    )


def downgrade() -> None:
    op.drop_table("launch_variant_stats")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("variant")
