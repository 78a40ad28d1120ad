"""romi roll-up: daily sums per report leaf, the callers behind them, and triggers noting stale days

Revision ID: 0008_romi_rollup
Revises: 0007_site_snippet_settings
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0008_romi_rollup"
down_revision: str | None = "0007_site_snippet_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns whose change can move a figure of the report; anything else (heartbeats, recordings, notes)
# leaves the roll-up alone.
SESSION_COLUMNS: tuple[str, ...] = ("client_id", "site_id", "visitor_id", "channel_id", "started_at")
SESSION_COLUMNS += ("utm_campaign", "utm_content", "utm_term")
CALL_COLUMNS: tuple[str, ...] = ("client_id", "called_at", "status", "first_time", "attribution_method")
CALL_COLUMNS += ("channel_id",)
CALL_COLUMNS += ("session_id", "caller")
DEAL_COLUMNS = ("client_id", "status", "amount", "call_id", "created_at")

INSERT = "INSERT INTO romi_dirty (client_id, at, site_id, visitor_id)"


def _deal_at(row: str) -> str:
    # A deal's revenue counts on its call's day, a deal without a call on the day it was created.
    return f"COALESCE((SELECT called_at FROM calls WHERE id = {row}.call_id), {row}.created_at)"


def _changed(columns: Sequence[str], distinct: str) -> str:
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns)


def _sqlite_triggers() -> list[str]:
    def notes(row: str) -> dict[str, str]:
        return {
            "visit_sessions": f"{INSERT} VALUES ({row}.client_id, {row}.started_at, {row}.site_id, "
            f"{row}.visitor_id);",
            "calls": f"{INSERT} SELECT {row}.client_id, {row}.called_at, NULL, NULL "
            f"WHERE {row}.called_at IS NOT NULL;",
            "deals": f"{INSERT} VALUES ({row}.client_id, {_deal_at(row)}, NULL, NULL);",
        }

    out = []
    for table, columns in (
        ("visit_sessions", SESSION_COLUMNS),
        ("calls", CALL_COLUMNS),
        ("deals", DEAL_COLUMNS),
    ):
        new, old = notes("NEW")[table], notes("OLD")[table]
        out += [
            f"CREATE TRIGGER romi_dirty_{table}_ins AFTER INSERT ON {table} BEGIN {new} END",
            f"CREATE TRIGGER romi_dirty_{table}_del AFTER DELETE ON {table} BEGIN {old} END",
            f"CREATE TRIGGER romi_dirty_{table}_upd AFTER UPDATE OF {', '.join(columns)} ON {table} "
            f"WHEN {_changed(columns, 'IS NOT')} BEGIN {old} {new} END",
        ]
    return out


def _postgres_triggers() -> list[str]:
    # Inserts and deletes are noted per statement from the transition table, so a bulk load writes one
    # INSERT … SELECT; updates are per row because only a column-specific trigger can skip heartbeats.
    sets = {
        "visit_sessions": "SELECT client_id, started_at, site_id, visitor_id FROM {t}",
        "calls": "SELECT client_id, called_at, NULL::int, NULL FROM {t} WHERE called_at IS NOT NULL",
        "deals": "SELECT d.client_id, COALESCE(c.called_at, d.created_at), NULL::int, NULL FROM {t} d "
        "LEFT JOIN calls c ON c.id = d.call_id",
    }
    rows = {
        "visit_sessions": "VALUES ({r}.client_id, {r}.started_at, {r}.site_id, {r}.visitor_id)",
        "calls": "SELECT {r}.client_id, {r}.called_at, NULL::int, NULL WHERE {r}.called_at IS NOT NULL",
        "deals": "VALUES ({r}.client_id, " + _deal_at("{r}") + ", NULL::int, NULL)",
    }
    out = []
    for table, columns in (
        ("visit_sessions", SESSION_COLUMNS),
        ("calls", CALL_COLUMNS),
        ("deals", DEAL_COLUMNS),
    ):
        for op_name, t in (("ins", "new_rows"), ("del", "old_rows")):
            out.append(
                f"CREATE FUNCTION romi_note_{table}_{op_name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {INSERT} {sets[table].format(t=t)}; RETURN NULL; END $$"
            )
            kind = "INSERT" if op_name == "ins" else "DELETE"
            ref = "NEW TABLE AS new_rows" if op_name == "ins" else "OLD TABLE AS old_rows"
            out.append(
                f"CREATE TRIGGER romi_dirty_{table}_{op_name} AFTER {kind} ON {table} "
                f"REFERENCING {ref} FOR EACH STATEMENT EXECUTE FUNCTION romi_note_{table}_{op_name}()"
            )
        out.append(
            f"CREATE FUNCTION romi_note_{table}_upd() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {INSERT} {rows[table].format(r='OLD')}; {INSERT} {rows[table].format(r='NEW')}; "
            "RETURN NULL; END $$"
        )
        out.append(
            f"CREATE TRIGGER romi_dirty_{table}_upd AFTER UPDATE OF {', '.join(columns)} ON {table} "
            f"FOR EACH ROW WHEN ({_changed(columns, 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION romi_note_{table}_upd()"
        )
    return out


def upgrade() -> None:
    op.create_table(
        "romi_leaves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("utm_campaign", sa.String(length=255), nullable=False),
        sa.Column("utm_content", sa.String(length=255), nullable=False),
        sa.Column("utm_term", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_romi_leaves_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_romi_leaves")),
        sa.UniqueConstraint(
            "client_id",
            "channel_id",
            "source",
            "utm_campaign",
            "utm_content",
            "utm_term",
            name="uq_romi_leaves",
        ),
    )
    for table in ("romi_daily", "romi_monthly", "romi_daily_callers"):
        figures = (
            [sa.Column("caller", sa.String(length=32), nullable=False)]
            if table == "romi_daily_callers"
            else [
                sa.Column(name, sa.Integer(), nullable=False)
                for name in ("visits", "calls", "first_time_calls", "answered", "missed", "deals", "won")
            ]
            + [sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False)]
        )
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("client_id", sa.Integer(), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("model", sa.String(length=16), nullable=False),
            sa.Column("leaf_id", sa.Integer(), nullable=False),
            *figures,
            sa.ForeignKeyConstraint(
                ["client_id"], ["clients.id"], name=op.f(f"fk_{table}_client_id_clients"), ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(
                ["leaf_id"],
                ["romi_leaves.id"],
                name=op.f(f"fk_{table}_leaf_id_romi_leaves"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_client_model_day", table, ["client_id", "model", "day"])
    op.create_table(
        "romi_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("visitor_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_romi_dirty")),
    )
    op.create_index("ix_romi_dirty_client", "romi_dirty", ["client_id", "id"])
    op.create_table(
        "romi_rollup_state",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("built_at", tracking.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_romi_rollup_state_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_romi_rollup_state")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in _postgres_triggers() if postgres else _sqlite_triggers():
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in ("visit_sessions", "calls", "deals"):
        for op_name in ("ins", "del", "upd"):
            op.execute(
                f"DROP TRIGGER IF EXISTS romi_dirty_{table}_{op_name}" + (f" ON {table}" if postgres else "")
            )
            if postgres:
                op.execute(f"DROP FUNCTION IF EXISTS romi_note_{table}_{op_name}()")
    for table in ("romi_rollup_state", "romi_dirty", "romi_daily_callers", "romi_monthly", "romi_daily"):
        op.drop_table(table)
    op.drop_table("romi_leaves")
