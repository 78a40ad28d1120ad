"""Tenant uniqueness and abuse bounds

Emails are unique per agency and tracking numbers per client (a name used by another tenant neither
blocks nor reveals anything); users carry a session generation that logout moves on; visitor sessions
keep a keyed hash of their source address and fallback events a reason; rate-limit counters live in the
database when no Redis is configured.

Revision ID: 0010_tenant_uniqueness
Revises: 0009_delivery_workers
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_tenant_uniqueness"
down_revision: str | None = "0009_delivery_workers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_email"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_users_agency_id_email"), ["agency_id", "email"])
        batch_op.create_index(batch_op.f("ix_users_email"), ["email"], unique=False)
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tracking_numbers_e164"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_tracking_numbers_client_id_e164"), ["client_id", "e164"]
        )
        batch_op.create_index(batch_op.f("ix_tracking_numbers_e164"), ["e164"], unique=False)
    with op.batch_alter_table("visit_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=32), nullable=True))
    with op.batch_alter_table("fallback_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_counters_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    # Going back needs emails and numbers that are unique across the hub again; the constraint refuses
    # otherwise, which is the right outcome (nothing is silently dropped).
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counters_expires_at"))
    op.drop_table("rate_limit_counters")
    with op.batch_alter_table("fallback_events", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("visit_sessions", schema=None) as batch_op:
        batch_op.drop_column("source_key")
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_numbers_e164"))
        batch_op.drop_constraint(batch_op.f("uq_tracking_numbers_client_id_e164"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_tracking_numbers_e164"), ["e164"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
        batch_op.drop_index(batch_op.f("ix_users_email"))
        batch_op.drop_constraint(batch_op.f("uq_users_agency_id_email"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_users_email"), ["email"])
