"""Target calls: rule conditions, stored results with history, the API/journal/export, ROMI and uploads."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from sqlalchemy import select

from tests import factories as h
from tests.factories import make_tenant
from tracking import call_journal, romi, targets
from tracking.calls import ingest
from tracking.models import Call, Connection, Delivery, TargetChange, TargetRule
from tracking.telephony.base import CallOutcome, EventKind
from tracking.telephony.base import ProviderEvent as Event

MSK = "Europe/Moscow"


def _facts(**kw) -> targets.Facts:
    base = {
        "status": "answered",
        "talk_seconds": 45,
        "first_time": True,
        "tags": frozenset(),
        "local_time": dt.datetime(2026, 11, 20, 10, 0),  # a Friday
    }
    base.update(kw)
    return targets.Facts(**base)


def _rule(**kw) -> TargetRule:
    base = {
        "id": 1,
        "name": "r",
        "min_talk_seconds": 30,
        "answered": "answered",
        "first_time_only": False,
        "tags_included": [],
        "tags_excluded": [],
        "working_hours": None,
    }
    base.update(kw)
    return TargetRule(**base)


def test_each_condition_of_a_rule() -> None:
    assert targets.meets(_rule(), _facts())
    assert not targets.meets(_rule(), _facts(talk_seconds=29))
    assert targets.meets(_rule(min_talk_seconds=0), _facts(talk_seconds=0))
    assert not targets.meets(_rule(), _facts(status="missed", talk_seconds=0))
    assert targets.meets(_rule(answered="missed"), _facts(status="missed", talk_seconds=0))
    assert not targets.meets(_rule(answered="missed"), _facts())
    assert targets.meets(_rule(answered="any"), _facts(status="busy", talk_seconds=0))
    assert not targets.meets(_rule(answered="any"), _facts(status="in_progress"))
    assert not targets.meets(_rule(first_time_only=True), _facts(first_time=False))
    assert not targets.meets(_rule(tags_included=["Lead"]), _facts(tags=frozenset({"other"})))
    assert targets.meets(_rule(tags_included=["Lead"]), _facts(tags=frozenset({"lead", "x"})))
    assert not targets.meets(_rule(tags_excluded=["Spam"]), _facts(tags=frozenset({"spam"})))


def test_working_hours_in_local_time_including_an_overnight_shift() -> None:
    office = {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}
    friday = dt.datetime(2026, 11, 20, 9, 0)
    assert targets.within_hours(office, friday)
    assert not targets.within_hours(office, friday.replace(hour=8, minute=59))
    assert not targets.within_hours(office, friday.replace(hour=18))  # the end is exclusive
    assert not targets.within_hours(office, friday + dt.timedelta(days=1))  # Saturday
    night = {"days": [5], "start": "22:00", "end": "06:00"}  # Friday night's shift
    assert targets.within_hours(night, friday.replace(hour=23))
    assert targets.within_hours(night, dt.datetime(2026, 11, 21, 3, 0))  # Saturday 03:00 is Friday's night
    assert not targets.within_hours(night, friday.replace(hour=3))  # Thursday's night: not a shift day
    assert not targets.within_hours(night, dt.datetime(2026, 11, 21, 6, 0))
    assert not targets.within_hours(office, None)


def _call(db, integ, call_id: str, *, at: dt.datetime, talk: int, caller: str = "+79001234567") -> Call:
    common = {"provider": "generic", "provider_call_id": call_id}
    events = [
        Event(**common, kind=EventKind.START, occurred_at=at, caller=caller, called="+74950001111"),
        Event(
            **common,
            kind=EventKind.END,
            occurred_at=at + dt.timedelta(seconds=talk + 5),
            ended_at=at + dt.timedelta(seconds=talk + 5),
            talk_seconds=talk,
            outcome=CallOutcome.ANSWERED if talk else CallOutcome.MISSED,
        ),
    ]
    for e in events:
        ingest(db, integ, e)
    db.commit()
    return db.scalars(select(Call).where(Call.provider_call_id == call_id)).one()


def _auth(t) -> dict[str, str]:
    return {"Authorization": f"Bearer {t.token}"}


def test_rules_through_the_api_stored_on_calls_with_history(app, client, db) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    base = f"/api/v1/clients/{t.client.id}/target-rules"
    # 10:00 Moscow on a Friday = 07:00 UTC
    at = dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC)
    before_rules = _call(db, integ, "before", at=at - dt.timedelta(days=1), talk=90, caller="+79005550000")
    assert before_rules.is_target is False and before_rules.target_rules == []

    bad = client.post(
        base, json={"name": "x", "working_hours": {"days": [8], "start": "9", "end": "x"}}, headers=_auth(t)
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "working_hours"
    assert client.post(base, json={"name": "x", "answered": "maybe"}, headers=_auth(t)).status_code == 400
    assert client.post(base, json={"min_talk_seconds": 5}, headers=_auth(t)).status_code == 400
    assert db.scalar(select(TargetRule.id)) is None

    quality = client.post(
        base,
        json={
            "name": "Quality lead",
            "first_time_only": True,
            "tags_excluded": ["spam"],
            "working_hours": {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},
        },
        headers=_auth(t),
    )
    assert quality.status_code == 201, quality.get_json()
    q = quality.get_json()
    assert (q["min_talk_seconds"], q["answered"]) == (30, "answered")  # the defaults
    # The call made before the rule existed is recomputed at once (Thursday 10:00 Moscow, 90 s, first).
    assert q["recomputed_calls"] == 1
    db.expire_all()
    assert db.get(Call, before_rules.id).target_rules == [{"id": q["id"], "name": "Quality lead"}]

    good = _call(db, integ, "good", at=at, talk=60, caller="+79001112233")
    short = _call(db, integ, "short", at=at + dt.timedelta(minutes=5), talk=10, caller="+79004445566")
    evening = _call(db, integ, "evening", at=at + dt.timedelta(hours=9), talk=60, caller="+79007778899")
    repeat = _call(db, integ, "repeat", at=at + dt.timedelta(hours=1), talk=60, caller="+79001112233")
    assert good.is_target and good.target_rules == [{"id": q["id"], "name": "Quality lead"}]
    assert not short.is_target  # 10 s of talk
    assert not evening.is_target  # 19:00 Moscow, after hours
    assert not repeat.is_target  # not a first-time caller

    listing = client.get(f"/api/v1/clients/{t.client.id}/calls?target=true", headers=_auth(t)).get_json()
    assert sorted(c["id"] for c in listing["items"]) == sorted([before_rules.id, good.id])
    assert all(c["is_target"] and c["target_rules"][0]["name"] == "Quality lead" for c in listing["items"])
    others = client.get(f"/api/v1/clients/{t.client.id}/calls?target=false", headers=_auth(t)).get_json()
    assert sorted(c["id"] for c in others["items"]) == sorted([short.id, evening.id, repeat.id])

    # The operator marks the good call as spam: it stops being target, with who and why in its history.
    resp = client.patch(
        f"/api/v1/clients/{t.client.id}/calls/{good.id}", json={"tags": ["spam"]}, headers=_auth(t)
    )
    assert resp.status_code == 200
    detail = resp.get_json()
    assert detail["is_target"] is False and detail["target_rules"] == []
    assert [(x["reason"], x["by"], x["to"]) for x in detail["target_history"]] == [
        ("call event: end", "system", [{"id": q["id"], "name": "Quality lead"}]),
        ("tags changed", t.admin.email, []),
    ]

    # A looser rule catches the short call; the response counts what changed.
    patched = client.patch(f"/api/v1/target-rules/{q['id']}", json={"min_talk_seconds": 5}, headers=_auth(t))
    assert patched.status_code == 200 and patched.get_json()["recomputed_calls"] == 1
    db.expire_all()
    assert db.get(Call, short.id).is_target
    reasons = db.scalars(select(TargetChange.reason).where(TargetChange.call_id == short.id)).all()
    assert reasons == ["rule 'Quality lead' changed"]

    # The export has the target columns.
    text = client.get(f"/api/v1/clients/{t.client.id}/calls.csv", headers=_auth(t)).data.decode("utf-8-sig")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows[str(short.id)]["target"] == "1" and rows[str(short.id)]["target_rules"] == "Quality lead"
    assert rows[str(repeat.id)]["target"] == "0"

    # Removing the rule: nothing is target any more.
    assert client.delete(f"/api/v1/target-rules/{q['id']}", headers=_auth(t)).status_code == 204
    db.expire_all()
    assert not db.scalars(select(Call).where(Call.is_target.is_(True))).all()


def test_another_agency_cannot_see_or_change_rules(app, client, db) -> None:
    a, b = make_tenant(db, "Alpha"), make_tenant(db, "Beta")
    made = client.post(f"/api/v1/clients/{a.client.id}/target-rules", json={"name": "A"}, headers=_auth(a))
    rule_id = made.get_json()["id"]
    assert client.get(f"/api/v1/clients/{a.client.id}/target-rules", headers=_auth(b)).status_code == 404
    assert (
        client.patch(f"/api/v1/target-rules/{rule_id}", json={"name": "B"}, headers=_auth(b)).status_code
        == 404
    )
    assert client.delete(f"/api/v1/target-rules/{rule_id}", headers=_auth(b)).status_code == 404
    db.expire_all()
    assert db.get(TargetRule, rule_id).name == "A"


def test_journal_shows_the_target_column_and_filters(app, client, db) -> None:
    from tests.factories import web_login

    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    db.add(TargetRule(client_id=t.client.id, name="Long talk", min_talk_seconds=30, answered="answered"))
    db.commit()
    at = dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC)
    long = _call(db, integ, "long", at=at, talk=120)
    brief = _call(db, integ, "brief", at=at + dt.timedelta(minutes=1), talk=3, caller="+79990001122")
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/calls").data.decode()
    assert "<th>Target</th>" in page and "Long talk</span>" in page
    only = client.get(f"/clients/{t.client.id}/calls?target=true").data.decode()
    assert f'data-call="{long.id}"' in only and f'data-call="{brief.id}"' not in only


def test_uploads_limited_to_target_calls_are_planned_when_a_call_becomes_target(app, client, db) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    db.add(TargetRule(client_id=t.client.id, name="Lead", min_talk_seconds=0, tags_included=["lead"]))
    limited = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="yandex",
        connectors=["metrika"],
        settings={"target_calls_only": True},
    )
    every = Connection(
        agency_id=t.agency.id, client_id=t.client.id, provider="google", connectors=["google_ads"]
    )
    db.add_all([limited, every])
    db.commit()
    call = _call(db, integ, "c", at=dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC), talk=40)
    planned = {(d.connection_id, d.key) for d in db.scalars(select(Delivery))}
    assert planned == {(every.id, f"otkuda-call-{call.id}")}  # not a target call: the limited one waits

    url = f"/api/v1/clients/{t.client.id}/calls/{call.id}"
    assert client.patch(url, json={"tags": ["lead"]}, headers=_auth(t)).status_code == 200
    db.expire_all()
    deliveries = {(d.connection_id, d.key): d for d in db.scalars(select(Delivery))}
    assert set(deliveries) == {(every.id, f"otkuda-call-{call.id}"), (limited.id, f"otkuda-call-{call.id}")}
    assert deliveries[(limited.id, f"otkuda-call-{call.id}")].payload["is_target"] is True
    # Tagging again (still target) plans nothing more.
    assert client.patch(url, json={"tags": ["lead", "vip"]}, headers=_auth(t)).status_code == 200
    assert len(db.scalars(select(Delivery)).all()) == 2


def test_romi_counts_target_calls_and_their_cost(db, shop) -> None:
    nov = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    before = romi.report(db, shop.t.client, *nov)
    total_calls = before.total.metrics.calls
    assert before.total.metrics.target_calls == 0 and before.total.metrics.cost_per_target_call is None
    # Target calls made the way a person makes them (a rule, then tags), so the roll-up hears of it.
    db.add(
        TargetRule(
            client_id=shop.t.client.id,
            name="Lead",
            min_talk_seconds=0,
            answered="any",
            tags_included=["lead"],
            tags_excluded=[],
        )
    )
    db.flush()
    chosen = db.scalars(
        select(Call).where(Call.client_id == shop.t.client.id).order_by(Call.id).limit(2)
    ).all()
    for c in chosen:
        call_journal.set_tags_notes(db, c, None, ["lead"])
    db.commit()
    after = romi.report(db, shop.t.client, *nov)
    m = after.total.metrics
    assert (m.calls, m.target_calls) == (total_calls, 2)
    assert m.cost_per_target_call == (m.spend / 2).quantize(Decimal("0.01"))
    assert m.as_dict()["cost_per_target_call"] == str((m.spend / 2).quantize(Decimal("0.01")))
    assert sum(n.metrics.target_calls for n in after.rows(1)) == 2


def test_connections_page_switches_uploads_to_target_calls_only(app, client, db) -> None:
    from tests.factories import csrf, web_login

    t = make_tenant(db)
    metrika = Connection(
        agency_id=t.agency.id, client_id=t.client.id, provider="yandex", connectors=["metrika"]
    )
    crm = Connection(agency_id=t.agency.id, client_id=t.client.id, provider="amocrm", connectors=["amocrm"])
    db.add_all([metrika, crm])
    db.commit()
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/connections").data.decode()
    # Metrika declares the setting, so its generic settings form has the checkbox; amoCRM's own form has not.
    assert page.count('name="target_calls_only"') == 1 and "Send only target calls" in page
    url = f"/clients/{t.client.id}/connections/{metrika.id}/settings"
    token = csrf(client)
    assert client.post(url, data={"csrf_token": token, "target_calls_only": "on"}).status_code == 302
    db.expire_all()
    assert db.get(Connection, metrika.id).settings["target_calls_only"] is True
    assert client.post(url, data={"csrf_token": token}).status_code == 302
    db.expire_all()
    assert db.get(Connection, metrika.id).settings.get("target_calls_only") in (False, None)
    crm_url = f"/clients/{t.client.id}/connections/{crm.id}/settings"
    assert client.post(crm_url, data={"csrf_token": token, "target_calls_only": "on"}).status_code == 404
