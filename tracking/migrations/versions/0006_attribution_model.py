"""attribution model version on calls; channel-coherent pools (a home channel per pool number)

Revision ID: 0006_attribution_model
Revises: 0004_deal_call_fk
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_attribution_model"
down_revision: str | None = "0004_deal_call_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribution_model", sa.String(length=16), nullable=True))
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel_coherent", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("home_channel_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tracking_numbers_home_channel_id_channels"),
            "channels",
            ["home_channel_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tracking_numbers_home_channel_id_channels"), type_="foreignkey"
        )
        batch_op.drop_column("home_channel_id")
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.drop_column("channel_coherent")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("attribution_model")
