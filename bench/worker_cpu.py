"""CPU a delivery worker spends per delivery, measured in process (the thread's own CPU, not the host's).

    python -m bench.worker_cpu [--destinations 60] [--calls 3] [--rounds 5] [--profile out.prof]

A throwaway PostgreSQL database gets one client with ``--destinations`` connections to the fake destination
(which answers at once) and, each round, ``--calls`` finalised calls, so every destination has that many
items; the batch size is 1. ``jobs.deliver.Worker.run_once`` serves every destination on this thread, and
the round's ``time.thread_time`` is divided by the deliveries done: the fakes' threads, the database server
and the machine's load are left out. A warm-up round is not counted. ``--profile`` writes a cProfile of
the counted rounds (timed by the thread's CPU) and prints the heaviest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time

from bench.delivery_throughput import delivery_world
from jobs.deliver import DeliverSettings, Worker
from jobs.runtime import Runtime
from tests.pipeline.support import call_payload
from tracking import hooks
from tracking.db import make_session_factory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--destinations", type=int, default=60)
    ap.add_argument("--calls", type=int, default=3, help="items per destination and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", default=None, help="write a cProfile of the counted rounds here")
    args = ap.parse_args()

    with delivery_world(args.destinations) as world:
        url, engine, key, fakes, client_id = world.url, world.engine, world.key, world.fakes, world.client_id
        sessions = make_session_factory(engine)
        config = {
            "DATABASE_URL": url,
            "ENCRYPTION_KEY": key,
            "BASE_URL": "http://hub.test",
            "INSTANCE_DIR": tempfile.mkdtemp(),
            **fakes.config(),
        }
        worker = Worker(Runtime.from_config(config, engine), "bench", DeliverSettings(batch_size=1))
        call_id = 0

        def round_() -> tuple[int, float]:
            nonlocal call_id
            with sessions() as db:
                for _ in range(args.calls):
                    call_id += 1
                    p = call_payload(call_id, client_id)
                    hooks.call_finalised.fire(db, hooks.CallFinalised(client_id, call_id, p["key"], p))
                db.commit()
            start = time.thread_time()
            done = worker.run_once().done
            return done, time.thread_time() - start

        round_()  # warm-up: imports, the statement cache, the first connections
        profile = cProfile.Profile(time.thread_time) if args.profile else None
        per_delivery = []
        for n in range(args.rounds):
            if profile is not None:
                profile.enable()
            done, cpu = round_()
            if profile is not None:
                profile.disable()
            per_delivery.append(cpu / max(done, 1) * 1000)
            print(f"round {n + 1}: {done} deliveries, {per_delivery[-1]:5.2f} ms of CPU a delivery")
        print(
            f"median {statistics.median(per_delivery):.2f} ms of CPU a delivery "
            f"({'profiled, so inflated' if profile else 'this thread only'}); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        if profile is not None:
            profile.dump_stats(args.profile)
            stats = pstats.Stats(args.profile).sort_stats("cumulative")
            stats.print_stats(r"(jobs|connectors|tests/fakes)", 25)


if __name__ == "__main__":
    main()
