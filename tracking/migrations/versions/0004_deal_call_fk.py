"""deals.call_id references calls.id

Revision ID: 0004_deal_call_fk
Revises: 0003_delivery
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_deal_call_fk"
down_revision: str | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A deal pointing at a call that no longer exists loses the link, not the deal.
    op.execute(
        "UPDATE deals SET call_id = NULL WHERE call_id IS NOT NULL AND call_id NOT IN (SELECT id FROM calls)"
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_deals_call_id_calls"), "calls", ["call_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deals_call_id_calls"), type_="foreignkey")
