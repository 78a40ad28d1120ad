"""delivery workers: destinations held by one worker at a time, with their rate-limit state

Revision ID: 0009_delivery_workers
Revises: 0008_romi_rollup
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0009_delivery_workers"
down_revision: str | None = "0008_romi_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("held_by", sa.String(length=64), nullable=True),
        sa.Column("held_until", tracking.db.UTCDateTime(), nullable=True),
        sa.Column("ready_at", tracking.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_delivery_destinations_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_destinations")),
        sa.UniqueConstraint(
            "connection_id", "connector", name=op.f("uq_delivery_destinations_connection_id_connector")
        ),
    )


def downgrade() -> None:
    op.drop_table("delivery_destinations")
