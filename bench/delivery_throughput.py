"""Deliveries per second from 1 worker process to several, against a fake destination that is slow to answer.

    python -m bench.delivery_throughput [--destinations 200] [--calls 3] [--latency 0.2] [--workers 1,2,4]
                                        [--threads 8] [--budget 120]

A throwaway PostgreSQL database gets one client with ``--destinations`` connections to the fake destination
(each its own account and token), and ``--calls`` finalised calls, so every destination has that many items;
the batch size is 1, so each item is one push request, and the fake answers each after ``--latency``
seconds. For each worker count, that many ``otkuda worker`` processes (``--threads`` each) are started and
left to settle, the items are queued, and the run is timed until every item is done. It prints deliveries
per second with the ratio to one worker measured in the same run, and how long destinations waited for their
first delivery (the median and the longest against the ideal, items / (workers × threads) × latency), which
shows whether any destination waited behind another. Each round stops after ``--budget`` seconds.
Load goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine

from connectors import registry
from jobs.outbox import install
from tests.factories import make_tenant
from tests.fakes.destination import FakeDestination
from tests.fakes.oauth import GENERIC, FakeOAuth
from tests.pipeline.support import Fakes, call_payload, make_connection
from tracking import hooks
from tracking.db import make_engine, make_session_factory
from tracking.migrate import upgrade
from tracking.models import Delivery, DeliveryDestination, DeliveryStatus, SyncRun

PG_ADMIN = os.environ.get("OTKUDA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
LAUNCH = (
    "import connectors.registry as r; r.CONNECTORS['fakedest'] = 'tests.fakes.connector'; "
    "from hub.cli import main; main(['worker'])"
)


@dataclass
class DeliveryWorld:
    """A throwaway PostgreSQL database with one client and its connections to the fake destination."""

    url: str
    engine: Engine
    key: str  # the encryption key the connections' tokens are sealed with
    fakes: Fakes
    client_id: int


@contextmanager
def delivery_world(destinations: int, *, latency: float = 0.0) -> Iterator[DeliveryWorld]:
    """The database, the fake OAuth server and the fake destination (answering after ``latency`` seconds)
    with ``destinations`` connections of one client; all dropped and stopped on leaving."""
    import tests.pipeline.support as support
    from tracking.crypto import SecretBox

    registry.CONNECTORS["fakedest"] = "tests.fakes.connector"
    install()
    name = f"otkuda_bench_{secrets.token_hex(4)}"
    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    dest = FakeDestination().start()
    dest.latency = latency
    oauth = FakeOAuth(GENERIC, on_issue=dest.valid_tokens.add).start()
    fakes = Fakes(oauth, dest)
    engine = None
    try:
        upgrade(url)
        engine = make_engine(url)
        key = Fernet.generate_key().decode()
        support.BOX = SecretBox(key)  # the connections' tokens are sealed with this run's key
        with make_session_factory(engine)() as db:
            tenant = make_tenant(db, "Bench")
            for _ in range(destinations):
                make_connection(db, tenant, fakes, settings={"per_second": 1000})
            client_id = tenant.client.id
        yield DeliveryWorld(url, engine, key, fakes, client_id)
    finally:
        if engine is not None:
            engine.dispose()
        dest.stop()
        oauth.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_workers(n: int, env: dict[str, str], log: Path) -> list[subprocess.Popen[bytes]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LAUNCH], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        for _ in range(n)
    ]
    deadline = time.monotonic() + 60
    while log.read_text().count(" threads") < n:  # each says "worker <name> with N threads" once it runs
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("the workers did not start:\n" + log.read_text()[-2000:])
        time.sleep(0.1)
    return procs


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU the processes have used so far (Linux ``/proc``; 0 where it cannot be read)."""
    total = 0.0
    for p in procs:
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def round_(engine, env, client_id: int, workers: int, calls: int, budget: float, tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    sessions = make_session_factory(engine)
    with sessions() as db:
        for table in (Delivery, SyncRun, DeliveryDestination):
            db.execute(delete(table))
        db.commit()
    log = tmp / f"workers-{workers}.log"
    procs = start_workers(workers, env, log)
    try:
        with sessions() as db:
            for call_id in range(1, calls + 1):
                p = call_payload(call_id, client_id)
                hooks.call_finalised.fire(db, hooks.CallFinalised(client_id, call_id, p["key"], p))
            db.commit()
            total = db.scalar(select(func.count(Delivery.id))) or 0
            queued_at = db.scalar(select(func.max(Delivery.created_at)))
        load = os.getloadavg()[0]
        cpu0 = cpu_seconds(procs)
        start = time.perf_counter()
        done = 0
        while time.perf_counter() - start < budget:
            with sessions() as db:
                done = db.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.DONE)) or 0
            if done == total:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(procs) - cpu0
        with sessions() as db:
            firsts = db.execute(
                select(func.min(Delivery.done_at))
                .where(Delivery.status == DeliveryStatus.DONE)
                .group_by(Delivery.connection_id)
            ).scalars()
            waits = sorted((t - queued_at).total_seconds() for t in firsts)
            runs = db.execute(
                select(SyncRun.started_at, SyncRun.finished_at).where(
                    SyncRun.job == "deliver", SyncRun.finished_at.is_not(None)
                )
            ).all()
            push = statistics.median((b - a).total_seconds() for a, b in runs) if runs else float("nan")
    finally:
        stop(procs)
    return {
        "total": total,
        "done": done,
        "elapsed": elapsed,
        "waits": waits,
        "cpu": cpu,
        "load": load,
        "push": push,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--destinations", type=int, default=200)
    ap.add_argument("--calls", type=int, default=3, help="items per destination")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds the fake takes to answer a push")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--threads", type=int, default=8, help="destinations each worker serves at once")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per round at most")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp())
    with delivery_world(args.destinations, latency=args.latency) as world:
        url, engine, key, fakes, client_id = world.url, world.engine, world.key, world.fakes, world.client_id
        env = dict(os.environ)
        env.update(
            {
                "OTKUDA_DATABASE_URL": url,
                "OTKUDA_ENCRYPTION_KEY": key,
                "OTKUDA_SECRET_KEY": "bench",
                "OTKUDA_INSTANCE_DIR": str(tmp / "instance"),
                "OTKUDA_DELIVERY_BATCH_SIZE": "1",
                "OTKUDA_WORKER_THREADS": str(args.threads),
                "OTKUDA_WORKER_POLL_SECONDS": "0.1",
                "OTKUDA_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
                **{k: str(v) for k, v in fakes.config().items()},
            }
        )
        items = args.destinations * args.calls
        print(
            f"{args.destinations} destinations x {args.calls} items, one push each, fake latency "
            f"{args.latency * 1000:.0f} ms, {args.threads} threads a worker (PostgreSQL, 127.0.0.1)"
        )
        baseline = None
        for n in [int(x) for x in args.workers.split(",")]:
            r = round_(engine, env, client_id, n, args.calls, args.budget, tmp)
            rate = r["done"] / r["elapsed"]
            baseline = baseline or rate
            ideal = items / (n * args.threads) * args.latency
            waits = r["waits"]
            print(
                f"workers={n}  {r['done']:>5}/{r['total']} done in {r['elapsed']:6.1f} s"
                f"  {rate:7.1f} deliveries/s"
                f"  x1 worker {rate / baseline:5.2f}   first delivery per destination: median "
                f"{statistics.median(waits) if waits else float('nan'):5.2f} s, longest "
                f"{max(waits) if waits else float('nan'):5.2f} s (whole run at full use {ideal:5.2f} s)"
            )
            print(
                f"           a push with its bookkeeping {r['push'] * 1000:5.0f} ms (median);"
                f" workers' CPU {r['cpu'] / max(r['done'], 1) * 1000:5.1f} ms a delivery,"
                f" {r['cpu'] / r['elapsed']:4.2f} cores busy; machine load average at start {r['load']:.1f}"
                f" on {os.cpu_count()} cores"
            )


if __name__ == "__main__":
    main()
