from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

import tracking.models  # noqa: F401  (registers every table)
from tracking.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_triggers(connection: Connection) -> dict[str, tuple[str, str]]:
    rows = connection.exec_driver_sql("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
    return {name: (table, sql) for name, table, sql in rows}


def _keep_sqlite_triggers(connection: Connection) -> Any:
    """Batch mode rebuilds a SQLite table (copy, drop, rename) and its triggers go with the dropped copy, so
    the ROMI roll-up would silently stop noting changes. After each upgrade step, a trigger that vanished
    while its table still exists is put back as it was. (A migration that means to drop a trigger on
    SQLite must also drop it from ``sqlite_master``'s record here by re-running after the step: none does.)"""
    # Without this, the rename at the end of a rebuild fails on any trigger elsewhere that names the table.
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    known = _sqlite_triggers(connection)
    connection.commit()  # end the transaction these reads began, so the migrations' own one commits

    def after_step(*, step: Any, **_: Any) -> None:
        nonlocal known
        now = _sqlite_triggers(connection)
        if step.is_upgrade:
            tables = {
                name
                for (name,) in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            for name, (table, sql) in known.items():
                if name not in now and table in tables:
                    connection.exec_driver_sql(sql)
            now = _sqlite_triggers(connection)
        known = now

    return after_step


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        extra: dict[str, Any] = {}
        if connection.dialect.name == "sqlite":
            extra["on_version_apply"] = _keep_sqlite_triggers(connection)
        # Batch mode lets the same migrations alter tables on SQLite, which has no ALTER for most changes.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, **extra
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
