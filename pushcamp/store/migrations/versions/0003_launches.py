"""launches, their batch plan, delivery records, idempotency keys

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "launches",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("once", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("batches_total", sa.Integer(), nullable=False),
        sa.Column("batches_done", sa.Integer(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("started_at", Stamp, nullable=True),
        sa.Column("finished_at", Stamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_launches_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_launches_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launches")),
    )
    op.create_index(
        "uq_launches_once",
        "launches",
        ["campaign_id"],
        unique=True,
        postgresql_where=sa.text("once"),
        sqlite_where=sa.text("once = 1"),
    )
    op.create_index("ix_launches_campaign", "launches", ["campaign_id", "id"])

    op.create_table(
        "launch_batches",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("launch_id", BigId, nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", Stamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["launch_id"],
            ["launches.id"],
            name=op.f("fk_launch_batches_launch_id_launches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launch_batches")),
    )
    op.create_index("ix_launch_batches_status", "launch_batches", ["status", "id"])
    op.create_index("ix_launch_batches_launch", "launch_batches", ["launch_id", "status"])

    op.create_table(
        "deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("launch_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index("uq_deliveries_once", "deliveries", ["launch_id", "subscriber_id"], unique=True)
    op.create_index("ix_deliveries_launch_state", "deliveries", ["launch_id", "state"])
    op.create_index("ix_deliveries_subscriber_time", "deliveries", ["subscriber_id", "created_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_idempotency_keys_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("partner_id", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("deliveries")
    op.drop_table("launch_batches")
    op.drop_table("launches")
