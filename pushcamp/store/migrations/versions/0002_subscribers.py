"""subscribers, events, partner site and audience settings

Revision ID: 0002
Revises: 0001
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch_op:
        batch_op.add_column(
            sa.Column("site_origins", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("engagement_days", sa.Integer(), nullable=False, server_default="90")
        )
        batch_op.add_column(sa.Column("frequency_cap", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("silent_start", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("silent_end", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signing_key", sa.LargeBinary(length=32), nullable=True))
    # Every existing partner gets its own random event-signing key.
    conn = op.get_bind()
    partners = sa.table("partners", sa.column("id"), sa.column("signing_key"))
    for (partner_id,) in conn.execute(sa.select(partners.c.id)).all():
        conn.execute(
            partners.update().where(partners.c.id == partner_id).values(signing_key=os.urandom(32))
        )
    with op.batch_alter_table("partners") as batch_op:
        batch_op.alter_column(
            "signing_key", existing_type=sa.LargeBinary(length=32), nullable=False
        )

    op.create_table(
        "subscribers",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(length=100), nullable=False),
        sa.Column("auth", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("browser", sa.String(length=64), nullable=True),
        sa.Column("os", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_engaged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_subscribers_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
    )
    op.create_index(
        "uq_subscribers_partner_endpoint", "subscribers", ["partner_id", "endpoint"], unique=True
    )
    op.create_index("ix_subscribers_audience", "subscribers", ["partner_id", "active", "id"])

    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("launch_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_events_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("uq_events_once", "events", ["launch_id", "subscriber_id", "type"], unique=True)
    op.create_index("ix_events_partner_time", "events", ["partner_id", "created_at"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("subscribers")
    with op.batch_alter_table("partners") as batch_op:
        for column in (
            "signing_key",
            "silent_end",
            "silent_start",
            "frequency_cap",
            "engagement_days",
            "site_origins",
        ):
            batch_op.drop_column(column)
