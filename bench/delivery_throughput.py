"""Delivery throughput against a local fake destination, by batch size.

Run: python -m bench.delivery_throughput [--items 1000] [--backend sqlite|postgresql]
Prints items per second for each batch size and the ratio to batch size 1 measured in the same run.
Each round stops after ``--budget`` seconds, so the whole run is bounded. Load goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select, text

from connectors import registry
from jobs.deliver import DeliverSettings, Worker
from jobs.outbox import install
from jobs.runtime import Runtime
from tests.factories import make_tenant
from tests.fakes.destination import FakeDestination
from tests.fakes.oauth import GENERIC, FakeOAuth
from tests.pipeline.support import Fakes, call_payload, make_connection
from tracking import hooks
from tracking.db import make_engine, make_session_factory
from tracking.migrate import upgrade
from tracking.models import Delivery, DeliveryStatus, SyncRun

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def round_(rt: Runtime, client_id: int, items: int, batch: int, budget: float) -> float:
    with rt.sessions() as db:
        db.execute(delete(Delivery))
        db.execute(delete(SyncRun))
        db.commit()
        for call_id in range(1, items + 1):
            p = call_payload(call_id, client_id)
            hooks.call_finalised.fire(db, hooks.CallFinalised(client_id, call_id, p["key"], p))
        db.commit()
    worker = Worker(rt, "bench")
    start = time.perf_counter()
    deadline = start + budget
    # One batch per run, so the deadline is checked between batches and bounds the round.
    worker.settings = DeliverSettings(batch_size=batch, max_batches_per_run=1)
    while time.perf_counter() < deadline and worker.run_once().claimed:
        pass
    elapsed = time.perf_counter() - start
    with rt.sessions() as db:
        done = db.scalar(select(func.count(Delivery.id)).where(Delivery.status == DeliveryStatus.DONE)) or 0
    return done / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per round at most")
    args = ap.parse_args()

    registry.CONNECTORS["fakedest"] = "tests.fakes.connector"
    install()
    tmp = Path(tempfile.mkdtemp())
    admin = None
    if args.backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        name = f"otkuda_bench_{secrets.token_hex(4)}"
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    dest = FakeDestination().start()
    oauth = FakeOAuth(GENERIC, on_issue=dest.valid_tokens.add).start()
    fakes = Fakes(oauth, dest)
    try:
        upgrade(url)
        engine = make_engine(url)
        key = Fernet.generate_key().decode()
        import tests.pipeline.support as support
        from tracking.crypto import SecretBox

        support.BOX = SecretBox(key)  # the connection's tokens are sealed with this run's key
        rt = Runtime.from_config(
            {"DATABASE_URL": url, "ENCRYPTION_KEY": key, **fakes.config()}, engine=engine
        )
        db = make_session_factory(engine)()
        tenant = make_tenant(db, "Bench")
        make_connection(db, tenant, fakes, settings={"per_second": 1e6})
        db.close()
        print(f"backend={args.backend} items={args.items} (fake destination on 127.0.0.1)")
        baseline = None
        for batch in (1, 10, 50):
            rate = round_(rt, tenant.client.id, args.items, batch, args.budget)
            baseline = baseline or rate
            print(f"batch={batch:>3}  {rate:8.1f} items/s  ratio vs batch=1: {rate / baseline:5.2f}x")
        engine.dispose()
    finally:
        dest.stop()
        oauth.stop()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
