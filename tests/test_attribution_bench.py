"""The attribution benchmark's simulator runs the real hub: tiny worlds give sane, world-dependent numbers."""

from __future__ import annotations

from bench.attribution import BUCKETS, World, reliability, simulate


def test_one_visitor_per_number_is_attributed_almost_perfectly() -> None:
    # Numbers rest a whole day between visitors: every real call has one plausible session.
    world = World(visitors_per_day=160, days=1, visitors_per_number=1, misdials_per_call=0, seed=3)
    report = simulate(world)
    total = report.total()
    assert report.world.pool_size == 160 and report.fallback_visits == 0
    assert total.calls >= 15 and report.buckets["misdial"].calls == 0
    assert total.session >= 0.9 * total.calls and total.channel >= 0.9 * total.calls
    # Yandex Direct and Google Ads visitors come with campaigns; the others with none.
    assert 0 < total.campaign_calls < total.calls and total.campaign >= 0.9 * total.campaign_calls
    assert set(report.buckets) == set(BUCKETS)
    assert sum(b.calls for b in report.buckets.values()) == len(report.truths)


def test_a_crowded_pool_is_worse_and_misdials_are_counted() -> None:
    crowded = simulate(
        World(visitors_per_day=200, days=1, visitors_per_number=100, misdials_per_call=0.3, seed=3)
    )
    assert crowded.world.pool_size == 2
    assert crowded.fallback_visits > 0
    total = crowded.total()
    assert total.calls >= 15 and total.session < 0.9 * total.calls
    assert total.campaign <= total.campaign_calls and total.naive_campaign <= total.campaign_calls
    misdials = crowded.buckets["misdial"]
    assert misdials.calls > 0 and misdials.session == 0 and misdials.campaign_calls == 0
    # The naive rule names a session for every misdial to a number someone held.
    assert misdials.naive_named >= misdials.named


def test_reliability_table_and_calibration_error() -> None:
    rows, ece = reliability([(0.95, True), (0.95, True), (0.55, False), (0.55, True)])
    assert [(r[0], r[1]) for r in rows] == [("0.5-0.6", 2), ("0.9-1.0", 2)]
    assert ece == (abs(0.95 - 1.0) * 2 + abs(0.55 - 0.5) * 2) / 4
