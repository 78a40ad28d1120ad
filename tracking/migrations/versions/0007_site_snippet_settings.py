"""sites: attributes the snippet rewrites, and the opt-in for local seven-digit numbers

Revision ID: 0007_site_snippet_settings
Revises: 0006_attribution_model
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_site_snippet_settings"
down_revision: str | None = "0006_attribution_model"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("swap_attributes", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("swap_local_numbers", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("swap_local_numbers")
        batch_op.drop_column("swap_attributes")
