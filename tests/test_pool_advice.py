"""The pool simulator and the pool-advice command."""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets

from click.testing import CliRunner
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tracking.models import VisitSession
from tracking.poolsim import PoolConfig, Traffic, advise, rule_of_thumb, simulate


def test_simulation_is_deterministic_and_bigger_pools_help() -> None:
    traffic = Traffic(sessions_per_day=1500, call_rate=0.08)
    small = simulate(traffic, PoolConfig(8), days=2, seed=3)
    assert simulate(traffic, PoolConfig(8), days=2, seed=3) == small
    large = simulate(traffic, PoolConfig(60), days=2, seed=3)
    assert small.calls == large.calls > 100
    assert small.fallback_rate > 0.3 and large.fallback_rate < 0.01
    assert large.session_accuracy > small.session_accuracy + 0.2
    assert large.channel_accuracy >= large.session_accuracy
    assert small.utilisation > large.utilisation
    # Confidence is roughly honest once the pool is big enough.
    assert large.calibration_error < 0.1


def test_advice_orders_targets_and_rule_of_thumb() -> None:
    traffic = Traffic(sessions_per_day=800, call_rate=0.1)
    advice, tried = advise(traffic, (0.9, 0.99), max_size=80, days=2)
    assert [a.target for a in advice] == [0.9, 0.99]
    assert advice[0].size is not None and advice[1].size is not None
    assert advice[0].size <= advice[1].size
    ceiling = tried[80].session_accuracy
    assert advice[0].result.session_accuracy >= 0.9 * ceiling
    # The answer is the smallest size: one number fewer misses the target (when it was tried).
    smaller = tried.get(advice[0].size - 1)
    assert smaller is None or smaller.session_accuracy < 0.9 * ceiling
    assert rule_of_thumb(0) == 1 and rule_of_thumb(3000) == 10 and rule_of_thumb(3001) == 11


def _observed_sessions(db: Session, t, channel, sessions: int, visitors: int, seed: int) -> None:
    """``sessions`` mobile sessions of ``visitors`` visitors over the last three days."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    ids = [secrets.token_hex(6) for _ in range(visitors)]
    for i in range(sessions):
        start = now - dt.timedelta(minutes=rng.randrange(3 * 24 * 60))
        db.add(
            VisitSession(
                public_id=secrets.token_hex(8),
                client_id=t.client.id,
                site_id=t.site.id,
                visitor_id=ids[i % len(ids)],
                channel_id=channel.id,
                started_at=start,
                last_seen_at=start + dt.timedelta(seconds=rng.randrange(20, 900)),
                device="mobile",
            )
        )
    db.commit()


def test_pool_advice_command(db: Session, database_url: str, tmp_path) -> None:
    t = make_tenant(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 6)
    ads = h.make_channel(db, t.site, "Ads")
    _observed_sessions(db, t, ads, 900, 500, seed=5)
    env = {
        "OTKUDA_DATABASE_URL": database_url,
        "OTKUDA_INSTANCE_DIR": str(tmp_path),
    }
    from hub.cli import main

    result = CliRunner().invoke(
        main, ["pool-advice", "--client", str(t.client.id), "--max-size", "60"], env=env
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "900 sessions" in out and "500 visitors in the last 3 days" in out
    lines = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()}
    assert "target 95%" in lines and "target 99%" in lines and "current pool" in lines
    thumb = next(line for line in out.splitlines() if line.startswith("rule of thumb"))
    assert f" {math.ceil(500 / 3 / 100)} " in thumb
    assert lines["current pool"][2] == str(len(p.numbers))


def test_pool_advice_page_shows_what_to_expect_from_the_current_pool(client, db: Session) -> None:
    from tests.factories import web_login
    from tracking.pool_advice import pool_advice

    t = make_tenant(db)
    h.make_pool_setup(db, t.site, "+749522200", 4)
    ads = h.make_channel(db, t.site, "Ads")
    _observed_sessions(db, t, ads, 400, 300, seed=7)
    report = pool_advice(db, t.client.id, max_size=40)
    assert report.current is not None and 0 < report.current.session_accuracy < 1
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/pool-advice").get_data(as_text=True)
    expected = page[page.index('id="expected"') :]
    assert (
        f"{report.current.session_accuracy * 100:.0f}\u00a0%</strong> of calls tied to the right visit"
        in expected
    )
    assert f"{report.current.channel_accuracy * 100:.0f}\u00a0%</strong> to the right channel" in expected
    # 400 visits are enough to size the pool from: a verdict, not the not-enough-data state.
    assert 'data-kind="no_data"' not in page and 'id="verdict"' in page
