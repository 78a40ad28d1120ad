"""From zero to a tracked call, in real Chromium, as a new agency's admin would do it: every object is made
through the setup pages, the snippet runs on a landing page of its own origin, and the test call is seen
in the journal and in ROMI. Screenshots of each step go to tests/_artifacts/."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser import ARTIFACTS
from tests.factories import PASSWORD
from tracking.accounts import create_agency
from tracking.models import Call, Channel, Client, VisitSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Windows</title></head><body>
<h1>Windows for every home</h1>
<p>Call us: <a id="phone" href="tel:+74951234567">+7 (495) 123-45-67</a></p>
{tag}
</body></html>"""


def test_new_agency_sets_up_a_client_and_sees_its_first_call(browser, hub, landing, db) -> None:
    admin = create_agency(db, "Fresh Agency", "owner@fresh.example", PASSWORD)
    db.commit()
    backend = db.bind.dialect.name
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"setup-{backend}-{next(step):02d}-{name}.png"), full_page=True)

    page.goto(f"{hub}/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=No clients yet.")
    shot("no-clients")

    page.click("text=Create the first one")
    page.fill("input[name=name]", "Windows Ltd")
    page.fill("input[name=timezone]", "Mars/Base")
    page.click("button:text('Create client')")
    assert "unknown time zone" in page.inner_text("#err-timezone")
    page.fill("input[name=timezone]", "Europe/Moscow")
    page.click("button:text('Create client')")
    page.wait_for_selector("h1:text('Windows Ltd: settings')")
    shot("client")
    client = db.scalars(select(Client).where(Client.name == "Windows Ltd")).one()

    page.click("nav.setup-nav >> text=Sites")
    page.fill("input[name=name]", "Main site")
    page.fill("textarea[name=domains]", "127.0.0.1")
    page.fill("textarea[name=replace_numbers]", "+7 (495) 123-45-67")
    page.click("button:text('Add site')")
    page.click("table.setup-table >> text=Main site")
    tag = page.input_value("#snippet-tag")
    assert "not reported a visit yet" in page.inner_text("#install-check")
    shot("site-and-snippet")

    page.click("nav.setup-nav >> text=Channels")
    page.click(".presets >> button:text('Yandex Direct')")
    page.fill("input[name=name]", "VK ads")
    # The rule builder: conditions ANDed within a rule, rules ORed, ordered by up/down; it writes the text
    # field the form submits, which is hidden while the builder is on.
    builder = page.locator("#rule-builder")
    assert not page.is_visible("#rules")
    builder.locator("button.add-rule").click()
    first = builder.locator("fieldset.rule").nth(0)
    first.locator("select.cond-key").select_option("utm_source")
    first.locator("input.cond-value").fill("vk")
    first.locator("button.add-cond").click()
    first = builder.locator("fieldset.rule").nth(0)
    first.locator("select.cond-key").nth(1).select_option("utm_medium")
    first.locator("input.cond-value").nth(1).fill("cpc")
    builder.locator("button.add-rule").click()
    second = builder.locator("fieldset.rule").nth(1)
    second.locator("select.cond-key").select_option("referrer_domain")
    second.locator("input.cond-value").fill("vk.com")
    second.locator("button.rule-up").click()
    third = builder.locator("button.add-rule")
    third.click()
    builder.locator("fieldset.rule").nth(2).locator("select.cond-key").select_option("has_gclid")
    builder.locator("fieldset.rule").nth(2).locator("select.cond-value").select_option("no")
    assert page.input_value("#rules") == (
        "referrer_domain = vk.com\nutm_source = vk and utm_medium = cpc\nhas_gclid = no"
    )
    builder.locator("fieldset.rule").nth(2).locator("button.rule-remove").click()
    shot("rule-builder")
    page.click("button:text('Add channel')")
    page.wait_for_selector("#channels >> text=VK ads")
    vk = db.scalars(select(Channel).where(Channel.name == "VK ads")).one()
    assert vk.rules == [{"referrer_domain": "vk.com"}, {"utm_source": "vk", "utm_medium": "cpc"}]
    page.fill("input[name=landing]", "https://127.0.0.1/?utm_source=vk&utm_medium=cpc")
    page.click("button:text('Which channel?')")
    assert "VK ads" in page.inner_text("#test-verdict")
    shot("channels")

    page.click("nav.setup-nav >> text=Numbers")
    page.fill("textarea[name=numbers]", "+7 499 777-00-01\n8 (499) 777-00-02\nnot a phone")
    page.click("button:text('Add numbers')")
    assert "not a phone" in page.inner_text("#bad-lines")
    assert page.locator("#numbers tbody tr").count() == 2
    shot("numbers")

    page.click("nav.setup-nav >> text=Pools")
    page.fill("input[name=name]", "Ads pool")
    page.check("label.check:has-text('Yandex Direct') input")
    page.check("label.check:has-text('+74997770001') input")
    page.check("label.check:has-text('+74997770002') input")
    page.click("button:text('Add pool')")
    page.wait_for_selector("#pools >> text=Ads pool")
    shot("pool")

    page.click("nav.setup-nav >> text=Telephony")
    page.click("summary:text('generic')")
    page.click("button:text('Connect generic')")
    page.wait_for_selector("#shown-once")
    assert len(page.inner_text("#secret-secret")) >= 32
    shot("integration")

    landing.pages["/"] = LANDING.format(tag=tag)
    visitor = context.new_page()
    visitor.goto(f"{landing.url}/?yclid=777&utm_source=yandex")
    visitor.wait_for_function("window.Otkuda && window.Otkuda.status !== 'pending'", timeout=15000)
    shown = visitor.inner_text("#phone")
    assert shown in ("+7 (499) 777-00-01", "+7 (499) 777-00-02"), shown
    visitor.screenshot(path=str(ARTIFACTS / f"setup-{backend}-{next(step):02d}-landing-swapped.png"))
    dialled = "+7" + re.sub(r"\D", "", shown)[1:]
    visit = db.scalars(select(VisitSession).where(VisitSession.client_id == client.id)).one()
    assert db.get(Channel, visit.channel_id).name == "Yandex Direct"

    page.goto(f"{hub}/clients/{client.id}/settings/telephony")
    page.select_option("select[name=number_id]", label=dialled)
    page.click("button:text('Send a test call')")
    arrived = page.inner_text("#test-arrived")
    assert "Yandex Direct" in arrived and dialled in arrived
    shot("test-call")
    call = db.scalars(select(Call).where(Call.client_id == client.id)).one()
    assert call.session_id == visit.id

    page.click("nav.setup-nav >> text=Sites")
    assert "last seen" in page.inner_text("table.setup-table")
    page.click("table.setup-table >> text=Main site")
    assert "/?yclid=777" in page.inner_text("#install-check")

    page.goto(f"{hub}/clients/{client.id}/calls")
    row = page.locator("#calls-table tbody tr", has_text=call.caller).first
    assert "Yandex Direct" in row.inner_text()
    shot("journal")

    page.goto(f"{hub}/clients/{client.id}/romi")
    romi_row = page.locator("#romi-table tr", has_text="Yandex Direct").first
    assert re.search(r"\b1\b", romi_row.inner_text())
    shot("romi")

    # Archived: gone from the agency home unless asked for, and its pages say so.
    page.goto(f"{hub}/clients/{client.id}/settings")
    page.click("button:text('Archive this client')")
    page.wait_for_selector("#archived-note")
    page.goto(f"{hub}/")
    assert "Show archived" in page.inner_text("#all-archived")
    page.check("input[name=archived]")
    page.click("button:text('Show')")
    page.wait_for_selector("#clients-table >> text=Windows Ltd")
    shot("archived")
    assert errors == []
    context.close()
