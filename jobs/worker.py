"""The delivery worker process (``otkuda worker``): any number of them, on any host that shares the database.

Each worker holds a few destinations at a time (``jobs.deliver.claim_destinations``) and serves each on a
thread of its own, so a slow or rate-limited destination occupies one thread and never the others. Holds
are renewed while a thread works and let go when it is done; a worker that dies stops renewing, and once
its holds lapse another worker takes the destinations over and resolves what was in flight with the
connector's ``find_delivered`` before sending anything again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from jobs import lease
from jobs.deliver import DeliverSettings, DeliverStats, Held, Worker, claim_destinations, renew_holds
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


class WorkerProcess:
    def __init__(
        self,
        rt: Runtime,
        name: str | None = None,
        threads: int | None = None,
        echo: Callable[[str], None] = log.info,
    ) -> None:
        self.rt = rt
        self.name = name or lease.holder_id()
        self.threads = threads or int(rt.setting("WORKER_THREADS", 8))
        self.poll = float(rt.setting("WORKER_POLL_SECONDS", 0.5))
        self.settings = DeliverSettings.from_runtime(rt)
        self.worker = Worker(rt, self.name, self.settings)
        self.stop_event = threading.Event()
        self.echo = echo
        self.stats = DeliverStats()

    def _serve(self, held: Held) -> None:
        try:
            self.worker.serve(held, self.stats)
        except Exception:
            # The destination's items keep their state (claimed ones turn in doubt); the worker goes on.
            log.exception("serving %s@%s failed", held.connector, held.connection_id)

    def run(self) -> None:
        self.echo(f"worker {self.name} with {self.threads} threads")
        busy: dict[Future[None], Held] = {}
        renew_every = self.settings.hold.total_seconds() / 3
        renewed = time.monotonic()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="deliver") as pool:
            while not self.stop_event.is_set():
                for f in [f for f in busy if f.done()]:
                    del busy[f]
                free = self.threads - len(busy)
                if free > 0:
                    try:
                        for held in claim_destinations(self.rt, self.name, free, self.settings.hold):
                            busy[pool.submit(self._serve, held)] = held
                    except Exception:
                        log.exception("claiming destinations failed; trying again")
                if busy and time.monotonic() - renewed >= renew_every:
                    try:
                        renew_holds(self.rt, [h.token for h in busy.values()], self.settings.hold)
                        renewed = time.monotonic()
                    except Exception:
                        log.exception("renewing holds failed; trying again")
                if busy:
                    # Woken by the first push to finish, not only when every thread is busy: a thread that
                    # frees up while others still push claims its next destination at once, instead of
                    # idling until the poll interval ends.
                    wait(list(busy), timeout=self.poll, return_when=FIRST_COMPLETED)
                else:
                    self.stop_event.wait(self.poll)
            # Stopping: the pushes under way finish and are recorded; nothing new is claimed.
            while busy:
                done, _ = wait(list(busy), timeout=renew_every)
                for f in done:
                    del busy[f]
                if busy:
                    renew_holds(self.rt, [h.token for h in busy.values()], self.settings.hold)

    def stop(self) -> None:
        self.stop_event.set()
