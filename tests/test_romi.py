"""The ROMI engine against a small client whose every figure is worked out by hand (tests/romi_world.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.factories import make_tenant
from tests.romi_world import NOV_1, NOV_30
from tracking import romi
from tracking.models import AttributionMethod, Call


def by_label(nodes) -> dict[str, romi.Node]:
    return {n.label: n for n in nodes}


FIELDS = (
    "spend",
    "visits",
    "calls",
    "unique_callers",
    "first_time_calls",
    "answered",
    "missed",
    "deals",
    "won",
)


def figures(node: romi.Node) -> dict[str, object]:
    d = node.metrics.as_dict()
    return {k: d[k] for k in (*FIELDS, "revenue")}


def test_channel_rows_match_the_hand_count(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    rows = by_label(rep.rows(1))
    assert figures(rows["Yandex Direct"]) == {
        "spend": "1800.00",  # 1000 + 500 + the unvisited campaign's 300 (its platform's channel)
        "visits": 2,
        "calls": 3,  # two of its own and the direct return of visitor A (last non-direct)
        "unique_callers": 2,
        "first_time_calls": 2,
        "answered": 2,
        "missed": 1,
        "deals": 2,
        "won": 1,
        "revenue": "50000.00",
    }
    y = rows["Yandex Direct"].metrics
    assert y.romi == pytest.approx((50000 - 1800) / 1800)
    assert y.cost_per_call == Decimal("600.00") and y.cost_per_deal == Decimal("900.00")
    assert (y.visit_to_call, y.call_to_deal, y.deal_to_won) == (1.5, pytest.approx(2 / 3), 0.5)
    assert figures(rows["Google Ads"]) == {
        "spend": "200.00",
        "visits": 1,
        "calls": 1,
        "unique_callers": 1,
        "first_time_calls": 1,
        "answered": 1,
        "missed": 0,
        "deals": 0,
        "won": 0,
        "revenue": "0.00",
    }
    assert (rows["Direct"].metrics.visits, rows["Direct"].metrics.calls) == (2, 1)
    billboard = rows["Billboard"].metrics
    assert (billboard.spend, billboard.calls, billboard.revenue) == (Decimal("1500.00"), 1, Decimal("20000"))
    assert billboard.romi == pytest.approx((20000 - 1500) / 1500)
    # Calls and deals that belong to no channel keep rows of their own.
    assert rows["Pool overflow"].metrics.calls == 1 and rows["Unmatched number"].metrics.calls == 1
    no_call = rows["Deals without a call"].metrics
    assert (no_call.deals, no_call.won, no_call.revenue, no_call.calls) == (1, 1, Decimal("7000"), 0)
    total = rep.total.metrics
    assert (total.calls, total.visits, total.spend, total.revenue) == (
        8,
        5,
        Decimal("3500.00"),
        Decimal("77000"),
    )
    assert total.unique_callers == 7  # +79000000001 called twice
    special = {"Pool overflow", "Unmatched number", "Deals without a call"}
    assert set([n.label for n in rep.rows(1)][-3:]) == special  # after every channel


def test_drill_down_to_campaign_ad_group_keyword(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    yandex = by_label(rep.rows(1))["Yandex Direct"]
    campaigns = by_label(yandex.sorted_children())
    assert set(campaigns) == {"Sofas", "Brand"}
    sofas = campaigns["Sofas"]  # "701" by id and "sofas-nov" through the mapping are one campaign
    assert (sofas.key, sofas.metrics.visits, sofas.metrics.calls, sofas.metrics.spend) == (
        "701",
        2,
        3,
        Decimal("1500"),
    )
    assert (campaigns["Brand"].metrics.spend, campaigns["Brand"].metrics.visits) == (Decimal("300"), 0)
    [group] = sofas.sorted_children()  # "g1" by id and "Sofa group" by name are one ad group
    assert (group.key, group.label, group.metrics.visits) == ("g1", "Sofa group", 2)
    keywords = by_label(group.sorted_children())
    sofa, armchair = keywords["sofa"].metrics, keywords["armchair"].metrics
    assert (sofa.visits, sofa.calls, sofa.spend, sofa.clicks, sofa.revenue) == (
        1,
        2,
        Decimal("1000"),
        50,
        Decimal("50000"),
    )
    assert (armchair.visits, armchair.calls, armchair.missed, armchair.spend) == (1, 1, 1, Decimal("500"))
    assert rep.total.find([f"ch{shop.yandex.id}", "701", "g1", "k1"]) is not None
    assert [n.label for n in rep.top("campaign", 3)] == ["Sofas", "Search", "Brand"]  # named ones only


def test_every_parent_is_the_sum_of_its_children(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    additive = ("spend", "clicks", "impressions", "visits", "calls", "first_time_calls", "answered", "missed")
    additive += ("deals", "won", "revenue")

    def check(node: romi.Node) -> None:
        if not node.children:
            return
        for name in additive:
            assert getattr(node.metrics, name) == sum(
                getattr(c.metrics, name) for c in node.children.values()
            )
        assert node.metrics.callers == set().union(*(c.metrics.callers for c in node.children.values()))
        for c in node.children.values():
            check(c)

    check(rep.total)
    assert len(list(rep.total.walk(4))) > 12


def test_attribution_models_move_only_the_direct_return(db, shop) -> None:
    last = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30, model="last_touch").rows(1))
    assert (last["Yandex Direct"].metrics.calls, last["Direct"].metrics.calls) == (2, 2)
    assert last["Direct"].metrics.deals == 1  # the open deal moved with its call
    first = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30, model="first_touch").rows(1))
    assert (first["Yandex Direct"].metrics.calls, first["Direct"].metrics.calls) == (3, 1)


def test_a_manual_source_drops_the_session_tags(db, shop) -> None:
    call = shop.db.query(Call).filter(Call.caller == "+79000000002").one()
    call.attribution_method = AttributionMethod.MANUAL
    call.channel_id = shop.billboard.id
    db.commit()
    rows = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30).rows(2))
    assert rows["Billboard"].metrics.calls == 2
    assert [c.label for c in rows["Billboard"].sorted_children()] == ["(no campaign)"]


def test_manual_spend_is_prorated_and_periods_are_local_days(db, shop) -> None:
    half = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 5))
    rows = by_label(half.rows(1))
    assert rows["Billboard"].metrics.spend == Decimal("500.00")  # 5 of 31 days of 3,100
    assert rows["Google Ads"].metrics.calls == 1  # 00:30 Moscow on the 1st
    assert rows["Yandex Direct"].metrics.spend == Decimal("1000")
    shop.t.client.timezone = "UTC"
    db.commit()
    utc_rows = by_label(romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 5)).rows(1))
    assert "Google Ads" not in utc_rows or utc_rows["Google Ads"].metrics.calls == 0


def test_bad_requests_are_refused(db, shop) -> None:
    with pytest.raises(romi.InvalidReport, match="end"):
        romi.report(db, shop.t.client, NOV_30, NOV_1)
    with pytest.raises(romi.InvalidReport, match="model"):
        romi.report(db, shop.t.client, NOV_1, NOV_30, model="linear")


def test_another_client_sees_nothing_of_this_one(db, shop) -> None:
    other = make_tenant(db, "Other")
    rep = romi.report(db, other.client, NOV_1, NOV_30)
    assert rep.rows(1) == [] and rep.total.metrics.calls == 0 and rep.total.metrics.spend == 0
