"""number home campaign: the campaign a pool number serves within its channel

Revision ID: 0017_number_home_campaign
Revises: 0016_client_archive

Like ``home_channel_id`` this is hold bookkeeping, not setup: it moves with visits and bumps no config
version (migration 0014's triggers watch only the setup columns of ``tracking_numbers``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_number_home_campaign"
down_revision: str | None = "0016_client_archive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTERs: a batch rebuild on SQLite would drop the table's config-version triggers.
    op.add_column("tracking_numbers", sa.Column("home_campaign", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("tracking_numbers", "home_campaign")  # SQLite 3.35+ drops a column in place
