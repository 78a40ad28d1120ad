"""site config version: a counter every setup change bumps, so workers can cache a site's setup

Revision ID: 0014_site_config_version
Revises: 0012_outcomes

The hot path of the snippet (visits, heartbeats) reads a site's setup — the site row, its client's channels,
its pools with their channels and fallback numbers, the client's static numbers — from a per-process cache
and checks ``sites.config_version`` with the first query of each request. Triggers bump the counter on every
change of those rows, whoever makes it (API, web pages, scripts, migrations), so no writer can forget to.
Hold bookkeeping on ``tracking_numbers`` (``held_*``, ``released_at``, ``home_channel_id``) is not setup and
does not bump it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_site_config_version"
down_revision: str | None = "0012_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tracking_numbers columns that are setup (everything else on the row moves with every visit).
NUMBER_SETUP = ("client_id", "e164", "channel_id", "pool_id", "status")
# Tables whose rows carry client_id: a change bumps every site of that client.
CLIENT_TABLES = ("channels", "pools", "tracking_numbers")

PG_FUNCTION = """
CREATE FUNCTION otkuda_bump_site_config() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'pool_channels' THEN
        UPDATE sites SET config_version = config_version + 1
        WHERE client_id = (SELECT client_id FROM pools WHERE id = r.pool_id);
    ELSE
        UPDATE sites SET config_version = config_version + 1 WHERE client_id = r.client_id;
        IF TG_OP = 'UPDATE' AND OLD.client_id IS DISTINCT FROM NEW.client_id THEN
            UPDATE sites SET config_version = config_version + 1 WHERE client_id = OLD.client_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""

PG_SITE_FUNCTION = """
CREATE FUNCTION otkuda_bump_own_site_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.config_version := OLD.config_version + 1;
    RETURN NEW;
END $$;
"""


def _sqlite_triggers() -> list[str]:
    out = []
    bump = "UPDATE sites SET config_version = config_version + 1 WHERE client_id = {}.client_id;"
    for table in CLIENT_TABLES:
        of = f" OF {', '.join(NUMBER_SETUP)}" if table == "tracking_numbers" else ""
        out.append(
            f"CREATE TRIGGER otkuda_cfg_{table}_ins AFTER INSERT ON {table} BEGIN {bump.format('NEW')} END"
        )
        out.append(
            f"CREATE TRIGGER otkuda_cfg_{table}_del AFTER DELETE ON {table} BEGIN {bump.format('OLD')} END"
        )
        out.append(
            f"CREATE TRIGGER otkuda_cfg_{table}_upd AFTER UPDATE{of} ON {table} "
            f"BEGIN {bump.format('NEW')} {bump.format('OLD')} END"
        )
    via_pool = (
        "UPDATE sites SET config_version = config_version + 1 "
        "WHERE client_id = (SELECT client_id FROM pools WHERE id = {}.pool_id);"
    )
    head = "CREATE TRIGGER otkuda_cfg_pool_channels"
    out.append(f"{head}_ins AFTER INSERT ON pool_channels BEGIN {via_pool.format('NEW')} END")
    out.append(f"{head}_del AFTER DELETE ON pool_channels BEGIN {via_pool.format('OLD')} END")
    out.append(
        "CREATE TRIGGER otkuda_cfg_pool_channels_upd AFTER UPDATE ON pool_channels "
        f"BEGIN {via_pool.format('NEW')} {via_pool.format('OLD')} END"
    )
    # The bump itself changes config_version, so the WHEN clause keeps it from firing again.
    out.append(
        "CREATE TRIGGER otkuda_cfg_sites_upd AFTER UPDATE ON sites "
        "WHEN OLD.config_version = NEW.config_version "
        "BEGIN UPDATE sites SET config_version = config_version + 1 WHERE id = NEW.id; END"
    )
    return out


def _pg_triggers() -> list[str]:
    out = [PG_FUNCTION, PG_SITE_FUNCTION]
    for table in (*CLIENT_TABLES, "pool_channels"):
        events = "INSERT OR DELETE OR UPDATE"
        if table == "tracking_numbers":
            events = f"INSERT OR DELETE OR UPDATE OF {', '.join(NUMBER_SETUP)}"
        out.append(
            f"CREATE TRIGGER otkuda_cfg_{table} AFTER {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION otkuda_bump_site_config()"
        )
    out.append(
        "CREATE TRIGGER otkuda_cfg_sites BEFORE UPDATE ON sites FOR EACH ROW "
        "WHEN (OLD.config_version = NEW.config_version) EXECUTE FUNCTION otkuda_bump_own_site_config()"
    )
    return out


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("config_version", sa.Integer(), nullable=False, server_default="0"))
    postgres = op.get_bind().dialect.name == "postgresql"
    for ddl in _pg_triggers() if postgres else _sqlite_triggers():
        op.execute(ddl)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in (*CLIENT_TABLES, "pool_channels"):
            op.execute(f"DROP TRIGGER IF EXISTS otkuda_cfg_{table} ON {table}")
        op.execute("DROP TRIGGER IF EXISTS otkuda_cfg_sites ON sites")
        op.execute("DROP FUNCTION IF EXISTS otkuda_bump_site_config()")
        op.execute("DROP FUNCTION IF EXISTS otkuda_bump_own_site_config()")
    else:
        for table in (*CLIENT_TABLES, "pool_channels"):
            for suffix in ("ins", "del", "upd"):
                op.execute(f"DROP TRIGGER IF EXISTS otkuda_cfg_{table}_{suffix}")
        op.execute("DROP TRIGGER IF EXISTS otkuda_cfg_sites_upd")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("config_version")
