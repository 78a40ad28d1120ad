"""Sync history: every job run leaves a SyncRun row (what, for which account, how many, which errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from jobs.runtime import Runtime
from tracking.db import utcnow
from tracking.models import SyncRun

MAX_ERROR_TEXT = 4000


@dataclass
class RunTally:
    items: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors.append(text)


_RUNS = cast(Table, SyncRun.__table__)
# Built once: a worker writes two of these for every batch it sends.
_OPEN = (
    insert(_RUNS)
    .values(
        job=bindparam("p_job"),
        connector=bindparam("p_connector"),
        connection_id=bindparam("p_cid"),
        started_at=bindparam("p_at"),
    )
    .returning(_RUNS.c.id)
)
_CLOSE = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("p_id"))
    .values(
        finished_at=bindparam("p_at"),
        items=bindparam("p_items"),
        errors=bindparam("p_errors"),
        error_text=bindparam("p_text"),
    )
)


def open_run(
    db: Session | Connection, job: str, *, connector: str | None = None, connection_id: int | None = None
) -> int:
    """Write the row of a run that starts now, in ``db``'s transaction (the caller commits); its id."""
    run_id = db.scalar(
        _OPEN, {"p_job": job, "p_connector": connector, "p_cid": connection_id, "p_at": utcnow()}
    )
    assert run_id is not None
    return int(run_id)


def close_run(db: Session | Connection, run_id: int, tally: RunTally) -> None:
    """Finish a run's row with what it did, in ``db``'s transaction (the caller commits)."""
    text = "\n".join(tally.errors)[:MAX_ERROR_TEXT] or None
    db.execute(
        _CLOSE,
        {
            "p_id": run_id,
            "p_at": utcnow(),
            "p_items": tally.items,
            "p_errors": len(tally.errors),
            "p_text": text,
        },
    )


@contextmanager
def recorded(
    rt: Runtime, job: str, *, connector: str | None = None, connection_id: int | None = None
) -> Iterator[RunTally]:
    """Record one job run. The row is written when the run starts, so a crash leaves it unfinished."""
    with rt.sessions() as db:
        run_id = open_run(db, job, connector=connector, connection_id=connection_id)
        db.commit()
    tally = RunTally()
    try:
        yield tally
    except Exception as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        with rt.sessions() as db:
            close_run(db, run_id, tally)
            db.commit()
