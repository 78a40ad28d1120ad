"""client archive: when a client was archived (null while it is active)

Revision ID: 0016_client_archive
Revises: 0012_outcomes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0016_client_archive"
down_revision: str | None = "0012_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("archived_at", tracking.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("archived_at")
