"""client archive: when a client was archived (null while it is active)

Revision ID: 0016_client_archive
Revises: 0014_site_config_version

An archived client's sites hand out no tracking number, so archiving or restoring a client changes the setup
the snippet's hot path caches per site (migration 0014): a trigger bumps the version of the client's sites.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0016_client_archive"
down_revision: str | None = "0014_site_config_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = "UPDATE sites SET config_version = config_version + 1 WHERE client_id = NEW.id;"

PG_FUNCTION = f"""
CREATE FUNCTION otkuda_bump_client_sites_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {BUMP}
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("archived_at", tracking.db.UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER otkuda_cfg_clients AFTER UPDATE OF archived_at ON clients FOR EACH ROW "
            "WHEN (OLD.archived_at IS DISTINCT FROM NEW.archived_at) "
            "EXECUTE FUNCTION otkuda_bump_client_sites_config()"
        )
    else:
        op.execute(
            "CREATE TRIGGER otkuda_cfg_clients_upd AFTER UPDATE OF archived_at ON clients "
            f"WHEN OLD.archived_at IS NOT NEW.archived_at BEGIN {BUMP} END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS otkuda_cfg_clients ON clients")
        op.execute("DROP FUNCTION IF EXISTS otkuda_bump_client_sites_config()")
    else:
        op.execute("DROP TRIGGER IF EXISTS otkuda_cfg_clients_upd")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("archived_at")
