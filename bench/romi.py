"""Time of the full-year ROMI report for one large client, against a plain COUNT(*) in the same run.

For each backend (PostgreSQL, SQLite) this creates a throwaway database and fills it, with set-based SQL
so the load takes seconds rather than minutes, for one client: 1M visitor sessions over a year (five
channels, 50 campaigns, 200 ad groups, 1,000 keywords, 400k visitors so many come back), 100k calls on
them (80 % answered, repeat callers), 20k deals (half won) and 50k spend rows. Then it times

* the baseline: ``SELECT COUNT(*) FROM visit_sessions`` for the client;
* ``tracking.romi.report`` for the whole year (last non-direct model) down to keywords, from the roll-up
  (the first report, which builds the roll-up from the bulk load, is timed on its own);
* the same report after a day of calls changed (the report rebuilds that day first);
* ``tracking.romi.report_from_rows``, the row-level engine the roll-up replaces;

each as the median of ``--runs`` runs after one warm-up, and prints the ratio report / baseline.

    python -m bench.romi [--scale 1.0] [--runs 5] [--backends postgresql,sqlite] [--reuse]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tracking import romi
from tracking.db import make_engine, make_session_factory
from tracking.migrate import upgrade
from tracking.models import Agency, Channel, Client, Connection, ConnectionStatus, Site

PG_ADMIN_URL = os.environ.get("OTKUDA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
YEAR_START = dt.datetime(2025, 1, 1)
SECONDS_IN_YEAR = 365 * 86400


def _series(dialect: str, n: int) -> str:
    """A table ``seq(i)`` of 1..n in the dialect at hand."""
    if dialect == "postgresql":
        return f"(SELECT generate_series(1, {n}) AS i) seq"
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) seq"
    )


def _ts(dialect: str, seconds_expr: str) -> str:
    """A timestamp ``seconds_expr`` seconds after the start of the year, in the form the hub stores."""
    if dialect == "postgresql":
        return f"(TIMESTAMP '2025-01-01 00:00:00' + ({seconds_expr}) * INTERVAL '1 second')"
    return (
        f"(strftime('%Y-%m-%d %H:%M:%S', '2025-01-01', '+' || ({seconds_expr}) || ' seconds') || '.000000')"
    )


def _day(dialect: str, days_expr: str) -> str:
    if dialect == "postgresql":
        return f"(DATE '2025-01-01' + ({days_expr})::int)"
    return f"date('2025-01-01', '+' || ({days_expr}) || ' days')"


def _cat(dialect: str, *parts: str) -> str:
    return " || ".join(f"CAST({p} AS TEXT)" if not p.startswith("'") else p for p in parts)


def fill(engine: Engine, scale: float) -> tuple[int, dict[str, int]]:
    """The client and its year of data; returns the client id and the row counts."""
    # Calls are every tenth session (100k) and deals every fifth call (20k), so only these two scale.
    n_sessions, n_spend_days = int(1_000_000 * scale), max(1, int(365 * scale))
    db = make_session_factory(engine)()
    agency = Agency(name="Bench")
    client = Client(agency=agency, name="Bench client", timezone="Europe/Moscow")
    site = Site(client=client, name="site", domains=["bench.example"], site_key=secrets.token_urlsafe(12))
    db.add_all([agency, client, site])
    db.flush()
    channels = [
        Channel(client_id=client.id, name="Direct", is_default=True, position=10_000),
        Channel(client_id=client.id, name="Yandex Direct", rules=[{"has_yclid": True}], position=1),
        Channel(client_id=client.id, name="Google Ads", rules=[{"has_gclid": True}], position=2),
        Channel(client_id=client.id, name="Organic", rules=[{"referrer_domain": "yandex.ru"}], position=3),
        Channel(client_id=client.id, name="Referral", rules=[{"utm_medium": "referral"}], position=4),
    ]
    db.add_all(channels)
    conn = Connection(
        agency_id=agency.id,
        client_id=client.id,
        provider="bench",
        name="bench",
        connectors=[],
        account={},
        settings={},
        scopes=[],
        status=ConnectionStatus.DISABLED,
    )
    db.add(conn)
    db.commit()
    cid, sid, conn_id = client.id, site.id, conn.id
    ch = [c.id for c in channels]
    db.close()
    d = engine.dialect.name
    channel_case = "CASE seq.i % 5 " + " ".join(f"WHEN {k} THEN {ch[k]}" for k in range(5)) + " END"
    step = SECONDS_IN_YEAR // n_sessions
    statements = [
        f"""INSERT INTO visit_sessions (public_id, client_id, site_id, visitor_id, channel_id, started_at,
              last_seen_at, utm_campaign, utm_content, utm_term)
            SELECT {_cat(d, "'b'", "seq.i")}, {cid}, {sid}, {_cat(d, "'v'", "seq.i % 400000")},
                   {channel_case},
                   {_ts(d, f"seq.i * {step}")}, {_ts(d, f"seq.i * {step} + 60")},
                   CASE WHEN seq.i % 5 IN (1, 2) THEN {_cat(d, "'70'", "seq.i % 50")} END,
                   CASE WHEN seq.i % 5 IN (1, 2) THEN {_cat(d, "'g'", "seq.i % 200")} END,
                   CASE WHEN seq.i % 5 IN (1, 2) THEN {_cat(d, "'k'", "seq.i % 1000")} END
            FROM {_series(d, n_sessions)}""",
        # Every tenth session calls five minutes after it started.
        f"""INSERT INTO calls (client_id, provider, provider_call_id, caller, called_at, wait_seconds,
              talk_seconds, status, abandoned, first_time, tags, target_rules, is_target, notes,
              attribution_method, candidates_count, session_id, channel_id, created_at, updated_at)
            SELECT {cid}, 'bench', {_cat(d, "'c'", "s.id")}, {_cat(d, "'+7900'", "1000000 + s.id % 70000")},
                   {_ts(d, f"(s.id - s0.first) * {step} + 300")}, 5,
                   CASE WHEN s.id % 5 = 0 THEN 0 ELSE 120 END,
                   CASE WHEN s.id % 5 = 0 THEN 'MISSED' ELSE 'ANSWERED' END, false, s.id % 3 <> 0,
                   '[]', '[]', false, '',
                   'DYNAMIC', 1, s.id, s.channel_id, {_ts(d, "0")}, {_ts(d, "0")}
            FROM visit_sessions s, (SELECT MIN(id) - 1 AS first FROM visit_sessions) s0
            WHERE s.client_id = {cid} AND s.id % 10 = 0""",
        f"""INSERT INTO deals (client_id, connection_id, external_id, status, amount, currency, name,
              pipeline_id, status_id, raw, updated_at, created_at, call_id, won_at)
            SELECT {cid}, {conn_id}, {_cat(d, "'d'", "c.id")},
                   CASE WHEN c.id % 2 = 0 THEN 'WON' ELSE 'OPEN' END,
                   CASE WHEN c.id % 2 = 0 THEN 10000 + c.id % 50000 ELSE 0 END, 'RUB', '', '', '', '{{}}',
                   c.called_at, c.called_at, c.id, CASE WHEN c.id % 2 = 0 THEN c.called_at END
            FROM calls c WHERE c.client_id = {cid} AND c.id % 5 = 0""",
        # 137 campaign/ad group/keyword combinations a day.
        f"""INSERT INTO spend_rows (client_id, connection_id, platform, day, campaign_id, campaign_name,
              ad_group_id, ad_group_name, keyword_id, keyword, impressions, clicks, cost, currency, pulled_at)
            SELECT {cid}, {conn_id},
                   CASE WHEN (seq.i % 137) % 2 = 0 THEN 'yandex_direct' ELSE 'google_ads' END,
                   {_day(d, "seq.i / 137")}, {_cat(d, "'70'", "(seq.i % 137) % 50")}, 'Campaign',
                   {_cat(d, "'g'", "(seq.i % 137) % 200")}, 'Group',
                   {_cat(d, "'k'", "seq.i % 137")}, 'keyword',
                   100, 10, 250.50, 'RUB', {_ts(d, "0")}
            FROM {_series(d, 137 * n_spend_days)}""",
    ]
    with engine.begin() as c:
        for sql in statements:
            c.execute(text(sql))
    with engine.begin() as c:  # ANALYZE inside a rolled-back transaction would keep no statistics
        counts = {
            t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("visit_sessions", "calls", "deals", "spend_rows")
        }
        c.execute(text("ANALYZE"))
    return cid, counts


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm caches and the statement cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(url: str, scale: float, runs: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as c:
        cid = c.execute(text("SELECT MIN(id) FROM clients")).scalar()
    if cid is None:
        cid, counts = fill(engine, scale)
        load_s = time.perf_counter() - t0
    else:  # a database kept by --reuse: filled, and its roll-up built, by an earlier run
        with engine.connect() as c:
            counts = {
                t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("visit_sessions", "calls", "deals", "spend_rows")
            }
        load_s = 0.0
    db = make_session_factory(engine)()
    client = db.get(Client, cid)
    assert client is not None
    year = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))

    def count() -> int:
        return db.execute(text(f"SELECT COUNT(*) FROM visit_sessions WHERE client_id = {cid}")).scalar_one()

    def full_year() -> romi.Report:
        return romi.report(db, client, *year)

    def from_rows() -> romi.Report:
        return romi.report_from_rows(db, client, *year)

    # The first report builds the roll-up of every day the bulk load left stale.
    t0 = time.perf_counter()
    rep = full_year()
    build_s = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        # The bulk load wrote a million and more romi_dirty notes at once, which the build deleted; until
        # autovacuum clears them, the report's "anything pending?" probe walks their dead index entries.
        # A hub meets that state once after a bulk import, not in the steady state measured here.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE romi_dirty"))
    base = median_ms(count, runs)
    report_ms = median_ms(full_year, runs)
    rows_ms = median_ms(from_rows, max(1, runs // 2))
    same = _figures(from_rows()) == _figures(rep)

    # A day's worth of new calls on the busiest day: the next report rebuilds that day first.
    def one_day_changed() -> romi.Report:
        with engine.begin() as c:
            c.execute(
                text(
                    "UPDATE calls SET status = CASE WHEN status = 'MISSED' THEN 'ANSWERED' ELSE 'MISSED' END "
                    f"WHERE client_id = {cid} AND called_at >= '2025-06-01' AND called_at < '2025-06-02'"
                )
            )
        return full_year()

    changed_ms = median_ms(one_day_changed, runs)
    db.close()
    engine.dispose()
    return {
        "counts": counts,
        "load_s": load_s,
        "build_s": build_s,
        "count_ms": base,
        "report_ms": report_ms,
        "rows_ms": rows_ms,
        "changed_ms": changed_ms,
        "same": same,
        "rows": len(rep.rows(4)),
        "calls": rep.total.metrics.calls,
        "revenue": rep.total.metrics.revenue,
    }


def _figures(rep: romi.Report) -> list[tuple[object, ...]]:
    return [(n.path, n.metrics.as_dict()) for n in rep.rows(len(romi.LEVELS))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M sessions")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the filled databases (one per scale) and reuse them in later runs instead of refilling",
    )
    args = parser.parse_args()
    tag = f"{int(args.scale * 1000):05d}"
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                where = Path(tempfile.gettempdir()) if args.reuse else Path(tmp)
                result = run(f"sqlite:///{where}/otkuda_bench_romi_{tag}.db", args.scale, args.runs)
            else:
                name = (
                    f"otkuda_bench_romi_{tag}" if args.reuse else f"otkuda_bench_romi_{secrets.token_hex(4)}"
                )
                admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    exists = c.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).first()
                    if not exists:
                        c.execute(text(f"CREATE DATABASE {name}"))
                try:
                    result = run(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", args.scale, args.runs)
                finally:
                    if not args.reuse:
                        with admin.connect() as c:
                            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    admin.dispose()
        counts = ", ".join(f"{k} {v:,}" for k, v in result["counts"].items())
        loaded = f"loaded in {result['load_s']:.1f} s" if result["load_s"] else "reused from an earlier run"
        print(f"== {backend}: {counts} ({loaded})")
        print(f"  baseline COUNT(*) sessions   median {result['count_ms']:8.1f} ms")
        base = result["count_ms"]
        for label, key in (
            ("full-year ROMI (roll-up)   ", "report_ms"),
            ("… after a day changed      ", "changed_ms"),
            ("full-year ROMI (row engine)", "rows_ms"),
        ):
            print(f"  {label}  median {result[key]:8.1f} ms   x baseline {result[key] / base:.1f}")
        built = (
            f"roll-up built from scratch by the first report in {result['build_s']:.1f} s"
            if result["load_s"]
            else f"roll-up kept from the earlier run (first report {result['build_s']:.1f} s)"
        )
        print(
            f"  {built}; "
            f"{result['rows']:,} rows, {result['calls']:,} calls, revenue {result['revenue']:,.0f}; "
            f"roll-up and row engine agree: {result['same']}"
        )


if __name__ == "__main__":
    main()
