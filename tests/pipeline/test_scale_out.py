"""The hub as several processes on one PostgreSQL database: two web nodes, two workers and a scheduler.

Calls come in through both web nodes (signed generic PBX webhooks), the workers push them to the fake
destination, and the worker that is pushing is killed with SIGKILL in the middle of a request. Every call
must arrive exactly once: the other worker takes the destination over when the dead one's hold lapses,
finds what had arrived with ``find_delivered``, and sends only the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from jobs.worker import WorkerProcess
from tests import factories as h
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.pipeline.support import call_payload, make_connection
from tracking import hooks
from tracking.db import is_postgres
from tracking.models import Call, Delivery, DeliveryDestination, DeliveryStatus, SyncRun
from tracking.telephony import generic

ROOT = Path(__file__).resolve().parents[2]
CALLS = 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # The ``otkuda`` command itself, with the test connector registered as a plugin would be.
    launch = (
        "import connectors.registry as r; r.CONNECTORS['fakedest'] = 'tests.fakes.connector'; "
        f"from hub.cli import main; main({args!r})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", launch], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _wait_for(what: str, check, procs, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        for p in procs:
            if p.poll() not in (None, -signal.SIGKILL):
                raise AssertionError(f"a process exited with {p.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def _post(base: str, key: str, event: dict) -> int:
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("pbx-secret", stamp, body),
        "Content-Type": "application/json",
    }
    return requests.post(f"{base}/hooks/v1/generic/{key}", data=body, headers=headers, timeout=30).status_code


@pytest.mark.slow
def test_web_nodes_workers_and_scheduler_deliver_each_call_once_when_a_worker_dies(
    db, fakes, database_url, tmp_path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database; SQLite runs one worker")
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    integ = h.make_integration(db, t, "generic", {"secret": "pbx-secret"})
    env = dict(os.environ)
    env.update(
        {
            "OTKUDA_DATABASE_URL": database_url,
            "OTKUDA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "OTKUDA_SECRET_KEY": "scale-out-test",
            "OTKUDA_INSTANCE_DIR": str(tmp_path / "instance"),
            "OTKUDA_SCHEDULE_DEALS_MINUTES": "0",
            "OTKUDA_SCHEDULE_SPEND_TODAY_MINUTES": "0",
            "OTKUDA_SCHEDULE_SPEND_YESTERDAY_CRON": "off",
            "OTKUDA_SCHEDULE_POOL_STATS_MINUTES": "0",
            "OTKUDA_SCHEDULE_TOKENS_MINUTES": "0",
            "OTKUDA_SCHEDULER_LEASE_SECONDS": "3",
            "OTKUDA_DELIVERY_BATCH_SIZE": "6",
            "OTKUDA_DELIVERY_HOLD_SECONDS": "3",
            "OTKUDA_WORKER_POLL_SECONDS": "0.2",
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in fakes.config().items()},
        }
    )
    log = tmp_path / "processes.log"
    ports = [_free_port(), _free_port()]
    webs = [_start(["serve", "--port", str(p)], env, log) for p in ports]
    # The second push request stores 2 of its events, then hangs: the worker sending it is killed there.
    fakes.dest.hang_on_request = 2
    fakes.dest.hang_after = 2
    procs = list(webs)
    try:
        for port in ports:

            def up(port: int = port) -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
                except requests.ConnectionError:
                    return False

            _wait_for(f"the web node on {port}", up, webs)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for i in range(CALLS):
            base = f"http://127.0.0.1:{ports[i % 2]}"  # as a load balancer would spread them
            common = {"call_id": f"pbx-{i}", "caller": f"+7900100{i:04d}", "called": "+74950000000"}
            assert (
                _post(base, integ.integration_key, {**common, "event": "start", "at": now.isoformat()}) == 200
            )
            end = (now + dt.timedelta(seconds=30)).isoformat()
            assert (
                _post(
                    base, integ.integration_key, {**common, "event": "end", "at": end, "status": "answered"}
                )
                == 200
            )
        db.expire_all()
        keys = {f"otkuda-call-{c.id}" for c in db.scalars(select(Call))}
        assert len(keys) == CALLS
        assert len(db.scalars(select(Delivery)).all()) == CALLS  # queued once, whichever node took the call

        workers = [_start(["worker", "--threads", "2"], env, log) for _ in range(2)]
        scheduler = _start(["scheduler"], env, log)
        procs += [*workers, scheduler]
        _wait_for("the hanging push", fakes.dest.hanging.is_set, procs)
        db.expire_all()
        holder = db.scalars(select(DeliveryDestination.held_by)).one()
        [pushing] = [w for w in workers if f":{w.pid}:" in (holder or "")]
        [other] = [w for w in workers if w is not pushing]
        assert len(fakes.dest.arrivals) == 6 + 2
        pushing.kill()  # SIGKILL: no cleanup, the batch's outcome is never recorded
        pushing.wait()
        fakes.dest.hang_on_request = None
        fakes.dest.release.set()

        def all_done() -> bool:
            db.expire_all()
            return all(d.status == DeliveryStatus.DONE for d in db.scalars(select(Delivery)))

        _wait_for("every delivery to be done", all_done, [other, scheduler, *webs])
        counts = fakes.dest.counts()
        assert set(counts) == keys
        assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}
        db.expire_all()
        assert {d.key: d.external_id for d in db.scalars(select(Delivery))} == {
            k: fakes.dest.ids[k] for k in keys
        }
        resolved = db.scalars(
            select(SyncRun).where(SyncRun.job == "resolve", SyncRun.connection_id == conn.id)
        )
        assert sum(r.items for r in resolved) == 2  # found at the destination, not sent again
    finally:
        fakes.dest.release.set()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    survivors = [p for p in procs if p.returncode != -signal.SIGKILL]
    assert len(survivors) == 4
    assert all(p.returncode in (0, -signal.SIGTERM) for p in survivors), [p.returncode for p in survivors]


def _run(proc: WorkerProcess) -> threading.Thread:
    th = threading.Thread(target=proc.run, daemon=True)
    th.start()
    return th


def test_a_worker_serves_destinations_side_by_side_and_each_by_one_worker(db, rt, fakes) -> None:
    t = make_tenant(db)
    conns = [make_connection(db, t, fakes) for _ in range(4)]
    for call_id in range(1, 9):
        p = call_payload(call_id, t.client.id)
        hooks.call_finalised.fire(db, hooks.CallFinalised(t.client.id, call_id, p["key"], p))
    db.commit()
    fakes.dest.latency = 0.3
    rt.config = {**rt.config, "DELIVERY_BATCH_SIZE": 1, "WORKER_POLL_SECONDS": 0.05}
    procs = [WorkerProcess(rt, name=f"w{i}", threads=4) for i in range(2 if is_postgres(db) else 1)]
    threads = [_run(p) for p in procs]
    try:
        _wait_for(
            "every delivery",
            lambda: db.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.DONE)) == 4 * 8,
            [],
        )
    finally:
        for p in procs:
            p.stop()
        for th in threads:
            th.join(timeout=30)
    assert set(fakes.dest.counts().values()) == {len(conns)}  # each call once at each destination
    assert fakes.dest.max_active > 1  # destinations were served side by side …
    assert fakes.dest.max_active_per_account == 1  # … each by one worker thread at a time


def test_rate_limits_hold_across_workers(db, rt, fakes) -> None:
    if not is_postgres(db):
        pytest.skip("several workers share a PostgreSQL database")
    t = make_tenant(db)
    make_connection(db, t, fakes, settings={"per_second": 4})
    for call_id in range(1, 13):
        p = call_payload(call_id, t.client.id)
        hooks.call_finalised.fire(db, hooks.CallFinalised(t.client.id, call_id, p["key"], p))
    db.commit()
    # Each worker may hold the destination in turn; together they keep to 4 a second after a burst of 5.
    rt.config = {
        **rt.config,
        "DELIVERY_BATCH_SIZE": 1,
        "WORKER_POLL_SECONDS": 0.05,
        "DELIVERY_HOLD_SECONDS": 1,
    }
    procs = [WorkerProcess(rt, name=f"w{i}", threads=2) for i in range(3)]
    threads = [_run(p) for p in procs]
    try:
        _wait_for(
            "every delivery",
            # At least half: with the burst, the count may go past 6 between two looks.
            lambda: (db.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.DONE)) or 0) >= 6,
            [],
        )
    finally:
        for p in procs:
            p.stop()
        for th in threads:
            th.join(timeout=30)
    [times] = fakes.dest.push_times.values()
    assert len(times) == 12
    # In any stretch of time, at most the burst plus the rate times its length (a tenth of a second of
    # slack for the way from the worker to the fake).
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 5 + 4 * (times[j] - first + 0.1), (i, j, times)
