"""outcomes: target-call rules, the rules each call meets, and their history

Revision ID: 0012_outcomes
Revises: 0011_call_identity_per_integration
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0012_outcomes"
down_revision: str | None = "0011_call_identity_per_integration"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The ROMI roll-up's grains count target calls too (no rule exists yet, so every stored figure is 0).
ROLLUPS = ("romi_daily", "romi_monthly")


def upgrade() -> None:
    op.create_table(
        "target_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("min_talk_seconds", sa.Integer(), nullable=False),
        sa.Column("answered", sa.String(length=16), nullable=False),
        sa.Column("first_time_only", sa.Boolean(), nullable=False),
        sa.Column("tags_included", sa.JSON(), nullable=False),
        sa.Column("tags_excluded", sa.JSON(), nullable=False),
        sa.Column("working_hours", sa.JSON(), nullable=True),
        sa.Column("created_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracking.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_target_rules_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_rules")),
    )
    with op.batch_alter_table("target_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_target_rules_client_id"), ["client_id"], unique=False)

    op.create_table(
        "call_target_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("old_rules", sa.JSON(), nullable=False),
        sa.Column("new_rules", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_target_changes_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_target_changes")),
    )
    with op.batch_alter_table("call_target_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_target_changes_call_id"), ["call_id"], unique=False)

    # Existing calls meet no rule until rules exist (and recomputing them is a rule change). Plain ADD
    # COLUMN, not a batch: recreating `calls` on SQLite would break the ROMI roll-up triggers on it.
    op.add_column("calls", sa.Column("target_rules", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("calls", sa.Column("is_target", sa.Boolean(), nullable=False, server_default=sa.false()))
    for table in ROLLUPS:
        op.add_column(table, sa.Column("target_calls", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("calls", "target_rules", server_default=None)
        op.alter_column("calls", "is_target", server_default=None)
        for table in ROLLUPS:
            op.alter_column(table, "target_calls", server_default=None)


def downgrade() -> None:
    for table in ROLLUPS:
        op.drop_column(table, "target_calls")
    op.drop_column("calls", "is_target")
    op.drop_column("calls", "target_rules")
    with op.batch_alter_table("call_target_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_target_changes_call_id"))
    op.drop_table("call_target_changes")
    with op.batch_alter_table("target_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_target_rules_client_id"))
    op.drop_table("target_rules")
