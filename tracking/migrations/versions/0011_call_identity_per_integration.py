"""A call is unique per (integration, provider call id), no longer per (provider, provider call id)

Revision ID: 0011_call_identity_per_integration
Revises: 0010_tenant_uniqueness
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_call_identity_per_integration"
down_revision: str | None = "0010_tenant_uniqueness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Alembic makes version_num VARCHAR(32); this revision id is longer, and it is written when this
        # step commits. SQLite does not enforce the length.
        op.alter_column("alembic_version", "version_num", type_=sa.String(128), existing_nullable=False)
    # Existing rows already satisfy the new key: a call id was unique per provider, so it is unique per
    # integration too. Calls whose integration was deleted keep a null integration and stay as they are.
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_calls_provider_provider_call_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_calls_integration_id_provider_call_id"), ["integration_id", "provider_call_id"]
        )


def downgrade() -> None:
    # Refused by the database when two tenants' calls now share a provider call id: that data cannot go back.
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_calls_integration_id_provider_call_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_calls_provider_provider_call_id"), ["provider", "provider_call_id"]
        )
