"""statistics read models and conversions

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(
            sa.Column("currency", sa.String(length=3), nullable=False, server_default="USD")
        )
        batch.add_column(
            sa.Column("attribution_hours", sa.Integer(), nullable=False, server_default="24")
        )

    op.create_table(
        "launch_stats",
        sa.Column("launch_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket", Stamp, nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.Numeric(20, 4), nullable=False),
        sa.PrimaryKeyConstraint(
            "launch_id", "bucket", "metric", "device", "shard", name=op.f("pk_launch_stats")
        ),
    )
    # A partner's launches, for the statistics that span all its campaigns.
    op.create_index("ix_launches_partner", "launches", ["partner_id", "campaign_id"])

    op.create_table(
        "conversions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("launch_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Numeric(18, 4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_conversions_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
    )
    op.create_index(
        "uq_conversions_once",
        "conversions",
        ["launch_id", "subscriber_id"],
        unique=True,
        postgresql_where=sa.text("order_id IS NULL"),
        sqlite_where=sa.text("order_id IS NULL"),
    )
    op.create_index(
        "uq_conversions_order",
        "conversions",
        ["partner_id", "order_id"],
        unique=True,
        postgresql_where=sa.text("order_id IS NOT NULL"),
        sqlite_where=sa.text("order_id IS NOT NULL"),
    )

    # Counters for what was recorded before this version.
    from pushcamp.store.statistics import recount_all

    recount_all(op.get_bind())


def downgrade() -> None:
    op.drop_index("uq_conversions_order", table_name="conversions")
    op.drop_index("uq_conversions_once", table_name="conversions")
    op.drop_table("conversions")
    op.drop_index("ix_launches_partner", table_name="launches")
    op.drop_table("launch_stats")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("attribution_hours")
        batch.drop_column("currency")
