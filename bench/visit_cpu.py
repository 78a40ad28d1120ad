"""CPU time per request of the snippet's endpoints, in process: robust to a loaded machine.

Seeds a throwaway database as ``bench.visits`` does (a site, a pool of 1000 numbers held 3 s, no channels;
``--channels`` adds a client's usual web channels with rules), then sends requests through the Flask test
client and reports, per route, the process CPU time per request (``time.process_time``: the Python the
worker pays, not the wait on the database), wall time per request, and how many visits the hot path
answered versus the full implementation.

    python -m bench.visit_cpu [--backend postgresql] [-n 400] [--channels] [--profile new|repeat|heartbeat]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.visits import ORIGIN, Database, _seed

ROUNDS = 10
HEADERS = {"Origin": ORIGIN, "Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}


def _add_channels(url: str) -> None:
    """A client's usual channels: paid search by click id and utm, social by referrer, and the default."""
    from tracking.db import make_engine, make_session_factory
    from tracking.models import Channel, Client

    engine = make_engine(url)
    db = make_session_factory(engine)()
    client = db.query(Client).one()
    rules = [
        ("Google Ads", [{"has_gclid": True}, {"utm_source": "google", "utm_medium": "cpc"}]),
        ("Yandex Direct", [{"has_yclid": True}, {"utm_source": "yandex", "utm_medium": "cpc"}]),
        ("Social", [{"referrer_domain": "vk.com"}, {"referrer_domain": "ok.ru"}]),
    ]
    for i, (name, rule) in enumerate(rules):
        db.add(Channel(client_id=client.id, name=name, rules=rule, position=i))
    db.add(Channel(client_id=client.id, name="Direct", is_default=True, position=len(rules)))
    db.commit()
    db.close()
    engine.dispose()


TICKS = os.sysconf("SC_CLK_TCK")


def _server_processes(app: Any) -> set[int]:
    """The PostgreSQL server processes behind the hub's connections (local server: their CPU time can be
    read from /proc), filled in as connections open."""
    from sqlalchemy import event

    pids: set[int] = set()
    for name in ("otkuda.engine", "otkuda.tracking_engine"):

        @event.listens_for(app.extensions[name], "connect")
        def _pid(dbapi_conn: Any, _record: Any) -> None:
            pids.add(dbapi_conn.info.backend_pid)

    return pids


def _ticks(pids: set[int] | None) -> int:
    total = 0
    for pid in pids or ():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def run(backend: str, n: int, channels: bool, profile: str | None) -> dict[str, Any]:
    from bench.visits import make_wsgi
    from tracking import visit_path

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db = Database(backend, tmp)
        try:
            key = _seed(db.url)
            if channels:
                _add_channels(db.url)
            os.environ.update(
                OTKUDA_DATABASE_URL=db.url,
                OTKUDA_INSTANCE_DIR=str(tmp / "instance"),
                OTKUDA_RATELIMIT_ENABLED=os.environ.get("OTKUDA_RATELIMIT_ENABLED", "0"),
                OTKUDA_POOL_HOLDS_PER_SOURCE="0",
            )
            app = make_wsgi()
            client = app.test_client()
            backends = _server_processes(app) if backend == "postgresql" else None
            counts = {"hot": 0, "full": 0}
            current = [""]
            hot_visit = visit_path.visit

            def counting(*args: Any, **kwargs: Any) -> Any:
                answer = hot_visit(*args, **kwargs)
                if current[0] == "new":
                    counts["hot" if answer is not None else "full"] += 1
                return answer

            visit_path.visit = counting  # type: ignore[assignment]
            visit_url = f"/t/v1/{key}/visit"
            repeat_id = "bench-repeat-visitor-0123456789abcdef"
            first = client.post(visit_url, data=json.dumps({"visitor_id": repeat_id}), headers=HEADERS)
            sid = first.get_json()["session_id"]
            seq = iter(range(10**9))
            routes = {
                "hello": lambda: client.get("/bench/hello"),
                "new": lambda: client.post(
                    visit_url,
                    data=json.dumps(
                        {"visitor_id": f"bench-new-{next(seq):08d}", "url": "https://bench.example/"}
                    ),
                    headers=HEADERS,
                ),
                "repeat": lambda: client.post(
                    visit_url, data=json.dumps({"visitor_id": repeat_id}), headers=HEADERS
                ),
                "heartbeat": lambda: client.post(
                    f"/t/v1/{key}/heartbeat", data=json.dumps({"session_id": sid}), headers=HEADERS
                ),
            }
            out: dict[str, Any] = {}
            for send in routes.values():
                for _ in range(20):  # warm caches, the connection pool and psycopg's prepared statements
                    assert send().status_code == 200
            counts.update(hot=0, full=0)
            # Routes take turns in short batches, and each route's figure is its median batch: a burst of
            # other work on a shared machine then spoils a batch, not a route.
            batches: dict[str, list[tuple[float, float]]] = {name: [] for name in routes}
            server_ticks = dict.fromkeys(routes, 0)
            size = max(1, n // ROUNDS)
            for _ in range(ROUNDS):
                for name, send in routes.items():
                    current[0] = name
                    ticks0 = _ticks(backends)
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    for _ in range(size):
                        send()
                    server_ticks[name] += _ticks(backends) - ticks0
                    batches[name].append(
                        ((time.process_time() - cpu0) / size, (time.perf_counter() - wall0) / size)
                    )
            for name, got in batches.items():
                out[name] = {
                    "cpu_ms": statistics.median(c for c, _ in got) * 1000,
                    "wall_ms": statistics.median(w for _, w in got) * 1000,
                    "db_cpu_ms": server_ticks[name] / TICKS / (size * ROUNDS) * 1000 if backends else 0.0,
                }
            out["new"].update(counts)
            if profile:
                prof = cProfile.Profile(time.process_time)
                prof.enable()
                for _ in range(n):
                    routes[profile]()
                prof.disable()
                s1, s2 = io.StringIO(), io.StringIO()
                pstats.Stats(prof, stream=s1).sort_stats("cumulative").print_stats(60)
                pstats.Stats(prof, stream=s2).sort_stats("tottime").print_stats(40)
                out["profile"] = s1.getvalue() + s2.getvalue()
            app.extensions["otkuda.engine"].dispose()
            app.extensions["otkuda.tracking_engine"].dispose()
            visit_path.visit = hot_visit  # type: ignore[assignment]
        finally:
            db.drop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument("-n", type=int, default=400, help="requests per route")
    parser.add_argument("--channels", action="store_true", help="give the client channels with rules")
    parser.add_argument("--profile", choices=("hello", "new", "repeat", "heartbeat"))
    args = parser.parse_args()
    out = run(args.backend, args.n, args.channels, args.profile)
    print(f"{'route':<11}{'cpu ms':>8}{'db cpu ms':>11}{'wall ms':>9}{'x hello cpu':>13}")
    for name in ("hello", "new", "repeat", "heartbeat"):
        m = out[name]
        print(
            f"{name:<11}{m['cpu_ms']:>8.3f}{m['db_cpu_ms']:>11.3f}{m['wall_ms']:>9.3f}"
            f"{out['hello']['cpu_ms'] / m['cpu_ms']:>13.3f}"
        )
    print(
        f"new visits answered by the hot path {out['new']['hot']}, "
        f"by the full implementation {out['new']['full']}"
    )
    if "profile" in out:
        print(out["profile"])


if __name__ == "__main__":
    main()
