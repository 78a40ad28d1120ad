"""Sync history: every job run leaves a SyncRun row (what, for which account, how many, which errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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


@contextmanager
def recorded(
    rt: Runtime, job: str, *, connector: str | None = None, connection_id: int | None = None
) -> Iterator[RunTally]:
    """Record one job run. The row is written when the run starts, so a crash leaves it unfinished."""
    with rt.sessions() as db:
        run = SyncRun(job=job, connector=connector, connection_id=connection_id, started_at=utcnow())
        db.add(run)
        db.commit()
        run_id = run.id
    tally = RunTally()
    try:
        yield tally
    except Exception as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        with rt.sessions() as db:
            row = db.get(SyncRun, run_id)
            if row is not None:
                row.finished_at = utcnow()
                row.items = tally.items
                row.errors = len(tally.errors)
                row.error_text = "\n".join(tally.errors)[:MAX_ERROR_TEXT] or None
                db.commit()
