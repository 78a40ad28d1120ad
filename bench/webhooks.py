"""Webhook ingestion throughput: full call lifecycles over HTTP to gunicorn on PostgreSQL.

Each simulated PBX call sends four signed generic-PBX events in order (start, answer, end, recording), as a
PBX would. A baseline phase of the same length hits the Mango ``ping`` route (same app, one indexed SELECT
and no ingestion) with the same client concurrency, so the ratio shows what ingestion costs over the
framework's floor on this machine. Only 127.0.0.1 is loaded; each phase stops after ``--seconds``.

    python bench/webhooks.py [--seconds 15] [--workers 4] [--procs 2] [--threads 8]

``--in-process N`` measures instead, in this one process through the Flask test client (no HTTP, no
gunicorn), the CPU time (``time.process_time``) of N call lifecycles against N×4 pings, alternating in
rounds so a change of load on the host hits both alike, and the statements each sends; ``--profile`` adds
a cProfile of the ingest requests. CPU time per request is robust to other work on the host, unlike the
HTTP throughput.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracking.crypto import encrypt_json  # noqa: E402
from tracking.db import make_engine, make_session_factory  # noqa: E402
from tracking.migrate import upgrade  # noqa: E402
from tracking.models import (  # noqa: E402
    Agency,
    Call,
    Channel,
    Client,
    StoredCallEvent,
    TelephonyIntegration,
    TrackingNumber,
)
from tracking.telephony import generic  # noqa: E402

SECRET = "bench-secret"
NUMBERS = [f"+749500000{i:02d}" for i in range(50)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(url: str, key: str) -> tuple[str, str]:
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        agency = Agency(name="Bench")
        client = Client(agency=agency, name="Bench client")
        db.add_all([agency, client])
        db.flush()
        channel = Channel(client_id=client.id, name="Radio")
        db.add(channel)
        db.flush()
        db.add_all(
            TrackingNumber(client_id=client.id, e164=n, channel_id=channel.id, forward_to="+74951230000")
            for n in NUMBERS
        )
        gen_key, mango_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        db.add_all(
            [
                TelephonyIntegration(
                    client_id=client.id,
                    provider="generic",
                    integration_key=gen_key,
                    secrets_encrypted=encrypt_json(key, {"secret": SECRET}),
                ),
                TelephonyIntegration(
                    client_id=client.id,
                    provider="mango",
                    integration_key=mango_key,
                    secrets_encrypted=encrypt_json(key, {"api_key": "k", "api_salt": "s"}),
                ),
            ]
        )
        db.commit()
    engine.dispose()
    return gen_key, mango_key


def _lifecycle(call_id: str, caller: str, number: str) -> list[dict]:
    now = dt.datetime.now(dt.UTC)
    at = lambda s: (now + dt.timedelta(seconds=s)).isoformat()  # noqa: E731
    return [
        {"event": "start", "call_id": call_id, "caller": caller, "called": number, "at": at(0)},
        {"event": "answer", "call_id": call_id, "forwarded_to": "101", "at": at(6)},
        {"event": "end", "call_id": call_id, "status": "answered", "talk_seconds": 80, "at": at(86)},
        {
            "event": "recording",
            "call_id": call_id,
            "recording_url": f"https://pbx.test/{call_id}.mp3",
            "at": at(90),
        },
    ]


def _signed(ev: dict) -> tuple[bytes, dict[str, str]]:
    """The body of a generic PBX event and the headers that sign it with the bench integration's secret."""
    body = json.dumps(ev).encode()
    ts = str(int(time.time()))
    return body, {
        "Content-Type": "application/json",
        "X-Otkuda-Timestamp": ts,
        "X-Otkuda-Signature": generic.sign(SECRET, ts, body),
    }


def _worker(args: tuple[str, str, int, float, int]) -> tuple[list[float], int, int]:
    """One load process: ``threads`` threads each looping until the deadline; returns latencies (s)."""
    mode, base, threads, deadline, seed = args
    latencies: list[float] = []
    errors = [0]
    calls = [0]
    lock = threading.Lock()

    def loop(tid: int) -> None:
        session = requests.Session()
        mine: list[float] = []
        n = 0
        while time.time() < deadline:
            if mode == "baseline":
                t0 = time.perf_counter()
                r = session.get(base, timeout=30)
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    with lock:
                        errors[0] += 1
                continue
            n += 1
            call_id = f"bench-{seed}-{tid}-{n}"
            caller = f"+7900{seed % 10}{tid:02d}{n % 10000:04d}"
            for ev in _lifecycle(call_id, caller, NUMBERS[n % len(NUMBERS)]):
                body, headers = _signed(ev)
                t0 = time.perf_counter()
                r = session.post(base, data=body, headers=headers, timeout=30)
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    with lock:
                        errors[0] += 1
            with lock:
                calls[0] += 1
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return latencies, errors[0], calls[0]


def _phase(mode: str, url: str, procs: int, threads: int, seconds: float) -> dict:
    deadline = time.time() + seconds
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_worker, [(mode, url, threads, deadline, i) for i in range(procs)])
    elapsed = time.perf_counter() - start
    lat = sorted(x for r in results for x in r[0])
    return {
        "requests": len(lat),
        "errors": sum(r[1] for r in results),
        "calls": sum(r[2] for r in results),
        "per_s": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
    }


def _in_process(url: str, key: str, gen_key: str, mango_key: str, lifecycles: int, profile: bool) -> None:
    import cProfile
    import pstats

    from sqlalchemy import event as sa_event

    from hub import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "ENCRYPTION_KEY": key,
            "SECRET_KEY": "bench",
            "INSTANCE_DIR": tempfile.mkdtemp(prefix="otkuda-bench-"),
            "BASE_URL": "http://hub.test",
        }
    )
    client = app.test_client()
    statements = [0]

    def count(*_args: object) -> None:
        statements[0] += 1

    sa_event.listen(app.extensions["otkuda.engine"], "before_cursor_execute", count)

    def post(ev: dict) -> None:
        body, headers = _signed(ev)
        r = client.post(f"/hooks/v1/generic/{gen_key}", data=body, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)

    def ping() -> None:
        assert client.get(f"/hooks/v1/mango/{mango_key}/ping").status_code == 200

    prof = cProfile.Profile(time.process_time) if profile else None
    # Warm-up: compiled-statement caches, the connection pool, imports on first use.
    for n in range(20):
        for ev in _lifecycle(f"warm-{n}", f"+7901000{n:04d}", NUMBERS[n % len(NUMBERS)]):
            post(ev)
        ping()
    totals = {"ping": 0.0, "ingest": 0.0}
    counts = {"ping": 0, "ingest": 0}
    sent = 0
    rounds = 10
    per_round = max(1, lifecycles // rounds)
    for r in range(rounds):
        t0 = time.process_time()
        for _ in range(per_round * 4):
            ping()
        totals["ping"] += time.process_time() - t0
        counts["ping"] += per_round * 4
        statements[0] = 0
        if prof:
            prof.enable()
        t0 = time.process_time()
        for n in range(per_round):
            i = r * per_round + n
            for ev in _lifecycle(f"cpu-{i}", f"+7902{i:07d}", NUMBERS[i % len(NUMBERS)]):
                post(ev)
        totals["ingest"] += time.process_time() - t0
        if prof:
            prof.disable()
        counts["ingest"] += per_round * 4
        sent += statements[0]
    ping_ms = totals["ping"] / counts["ping"] * 1000
    ingest_ms = totals["ingest"] / counts["ingest"] * 1000
    lifecycles_run = counts["ingest"] // 4
    print(f"in process, {lifecycles_run} lifecycles, {counts['ping']} pings (CPU time of this process)")
    print(f"ping:   {ping_ms:.2f} ms CPU a request")
    print(f"ingest: {ingest_ms:.2f} ms CPU an event ({ingest_ms / ping_ms:.2f}× a ping)")
    print(f"statements: {sent / counts['ingest']:.2f} an event (the commit not counted)")
    if prof:
        stats = pstats.Stats(prof)
        stats.sort_stats("cumulative").print_stats(40)
        stats.print_callees(r"\((ingest|generic_event)\)")
        stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("OTKUDA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients per load process")
    parser.add_argument(
        "--in-process", type=int, default=0, metavar="N", help="measure CPU per event over N lifecycles"
    )
    parser.add_argument("--profile", action="store_true", help="with --in-process: cProfile the events")
    args = parser.parse_args()

    name = f"otkuda_bench_{os.getpid()}"
    admin = make_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    key = Fernet.generate_key().decode()
    server = None
    try:
        gen_key, mango_key = _seed(url, key)
        if args.in_process:
            _in_process(url, key, gen_key, mango_key, args.in_process, args.profile)
            return
        port = _free_port()
        env = {
            **os.environ,
            "OTKUDA_DATABASE_URL": url,
            "OTKUDA_ENCRYPTION_KEY": key,
            "OTKUDA_SECRET_KEY": "bench",
            "OTKUDA_INSTANCE_DIR": tempfile.mkdtemp(prefix="otkuda-bench-"),
            "OTKUDA_BASE_URL": f"http://127.0.0.1:{port}",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(args.workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(f"{base}/hooks/v1/mango/{mango_key}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not start")

        baseline = _phase(
            "baseline", f"{base}/hooks/v1/mango/{mango_key}/ping", args.procs, args.threads, args.seconds
        )
        ingest = _phase(
            "ingest", f"{base}/hooks/v1/generic/{gen_key}", args.procs, args.threads, args.seconds
        )

        engine = make_engine(url)
        with make_session_factory(engine)() as db:
            calls = db.scalar(select(func.count()).select_from(Call))
            final = db.scalar(select(func.count()).select_from(Call).where(Call.finalised_at.is_not(None)))
            events = db.scalar(select(func.count()).select_from(StoredCallEvent))
        engine.dispose()

        print(
            f"cpus={os.cpu_count()} gunicorn workers={args.workers} "
            f"clients={args.procs}x{args.threads} seconds={args.seconds}"
        )
        print(f"{'phase':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for label, r in (("baseline (ping)", baseline), ("ingest (events)", ingest)):
            print(f"{label:<22}{r['per_s']:>10.0f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['errors']:>8}")
        if baseline["per_s"] and ingest["per_s"]:
            print(f"ingest/baseline throughput ratio: {ingest['per_s'] / baseline['per_s']:.2f}")
        else:  # the load processes start after the clock: a phase of a second or two may finish nothing
            print("ingest/baseline throughput ratio: not measured (no request finished; give --seconds more)")
        print(
            f"completed lifecycles: {ingest['calls']}; calls stored {calls}, "
            f"finalised {final}, events stored {events}"
        )
        # Lifecycles cut by the deadline may be partial; every sent event must be stored, none twice.
        assert events == ingest["requests"] - ingest["errors"], "events lost or duplicated"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
