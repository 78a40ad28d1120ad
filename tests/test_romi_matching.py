"""Calls and spend meet below campaign level: by the platform's id, else by name in any case or spacing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_tenant, web_login
from tests.romi_world import NOV_1, NOV_30, Shop, utc
from tracking import romi
from tracking.models import DealStatus, PlatformSpend


@pytest.fixture
def kitchens(db: Session) -> Shop:
    s = Shop(db, make_tenant(db))
    group = {"ad_group_id": "g7", "ad_group_name": "Kitchen Sets"}

    def spend(day: int, cost: str, **rest: str) -> None:
        db.add(
            PlatformSpend(
                client_id=s.t.client.id,
                connection_id=s.conn.id,
                platform="yandex_direct",
                day=dt.date(2026, 11, day),
                campaign_id="801",
                campaign_name="Kitchens",
                cost=Decimal(cost),
                currency="RUB",
                **rest,
            )
        )

    spend(3, "400", keyword_id="k71", keyword="Corner Kitchen", **group)
    spend(4, "100", keyword="oak table", **group)  # a keyword the platform gave no id
    spend(5, "50", keyword="Oak  Table", **group)  # … and spelt another way the next day
    # By id: the platform's ids of campaign, ad group and keyword in the tags.
    by_id = s.session(s.yandex, "V1", utc(3), utm_campaign="801", utm_content="g7", utm_term="k71")
    # By name: the campaign's name, the ad group's and the keyword's text, cased and spaced differently.
    by_name = s.session(
        s.yandex,
        "V2",
        utc(4),
        utm_campaign=" KITCHENS ",
        utm_content="kitchen   sets",
        utm_term="CORNER  kitchen",
    )
    # Only the keyword's text, no ad group: the keyword says which ad group it belongs to.
    keyword_only = s.session(s.yandex, "V3", utc(5), utm_campaign="801", utm_term="Oak Table")
    won = s.call(utc(3, 13), session=by_id, caller="+79000000101")
    s.call(utc(4, 13), session=by_name, caller="+79000000102", status=romi.CallStatus.MISSED)
    table = s.call(utc(5, 13), session=keyword_only, caller="+79000000103")
    s.deal(won, DealStatus.WON, "2000")
    s.deal(table, DealStatus.WON, "300")
    db.commit()
    return s


def test_calls_and_spend_share_the_ad_group_and_keyword_rows(db, kitchens) -> None:
    rep = romi.report(db, kitchens.t.client, NOV_1, NOV_30)
    [campaign] = rep.total.children[f"ch{kitchens.yandex.id}"].sorted_children()
    assert (campaign.key, campaign.label, campaign.metrics.calls) == ("801", "Kitchens", 3)
    [group] = campaign.sorted_children()  # no "(no ad group)" beside the named one
    m = group.metrics
    assert (group.key, group.label) == ("g7", "Kitchen Sets")
    assert (m.visits, m.calls, m.spend, m.revenue) == (3, 3, Decimal("550"), Decimal("2300"))
    assert m.romi == pytest.approx((2300 - 550) / 550)
    keywords = {k.key: k.metrics for k in group.sorted_children()}
    assert set(keywords) == {"k71", "oak table"}
    corner, oak = keywords["k71"], keywords["oak table"]
    assert (corner.visits, corner.calls, corner.missed, corner.spend, corner.revenue) == (
        2,
        2,
        1,
        Decimal("400"),
        Decimal("2000"),
    )
    assert (oak.visits, oak.calls, oak.spend, oak.revenue) == (1, 1, Decimal("150"), Decimal("300"))


def test_top_keywords_list_each_keyword_once_with_its_calls_and_spend(db, kitchens) -> None:
    top = romi.report(db, kitchens.t.client, NOV_1, NOV_30).top("keyword")
    assert [(n.label, n.metrics.calls, n.metrics.spend) for n in top] == [
        ("Corner Kitchen", 2, Decimal("400")),
        ("Oak Table", 1, Decimal("150")),  # as the platform spelt it first, spaces tidied
    ]


def test_every_models_rows_meet_the_same_way(db, kitchens) -> None:
    for model in romi.Model:
        rep = romi.report(db, kitchens.t.client, NOV_1, NOV_30, model=model)
        group = rep.total.find([f"ch{kitchens.yandex.id}", "801", "g7"])
        assert group is not None and group.metrics.calls == 3 and group.metrics.spend == Decimal("550")


def test_a_no_ad_group_row_can_be_drilled_into(client, shop) -> None:
    web_login(client, shop.t.admin.email)
    rep = romi.report(shop.db, shop.t.client, NOV_1, NOV_30)
    brand = rep.total.find([f"ch{shop.yandex.id}", "702"])
    [group] = brand.sorted_children()  # the Brand campaign's spend names no ad group
    assert group.label == "(no ad group)"
    path = "/".join(group.path)
    page = client.get(
        f"/clients/{shop.t.client.id}/romi",
        query_string={"start": "2026-11-01", "end": "2026-11-30", "path": path},
    ).get_data(as_text=True)
    table = page.split('id="romi-table"')[1].split("</table>")[0]
    assert "(no keyword)" in table and 'data-col="spend">300<' in table
