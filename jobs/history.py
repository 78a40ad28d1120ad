"""Sync history: every job run leaves a SyncRun row (what, for which account, how many, which errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import insert, update
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


def open_run(
    db: Session | Connection, job: str, *, connector: str | None = None, connection_id: int | None = None
) -> int:
    """Write the row of a run that starts now, in ``db``'s transaction (the caller commits); its id."""
    run_id = db.scalar(
        insert(SyncRun)
        .values(job=job, connector=connector, connection_id=connection_id, started_at=utcnow())
        .returning(SyncRun.id)
    )
    assert run_id is not None
    return int(run_id)


def close_run(db: Session | Connection, run_id: int, tally: RunTally) -> None:
    """Finish a run's row with what it did, in ``db``'s transaction (the caller commits)."""
    db.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            finished_at=utcnow(),
            items=tally.items,
            errors=len(tally.errors),
            error_text="\n".join(tally.errors)[:MAX_ERROR_TEXT] or None,
        )
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
