"""Setting a client up in the browser: each form saves valid input, shows the schema's message for bad
input and changes nothing, refuses viewers, and hides other agencies' objects."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from tests.factories import PASSWORD, csrf, make_tenant, make_user, web_login
from tests.test_tenancy import snapshot
from tracking.accounts import authenticate, create_agency, user_for_token
from tracking.crypto import decrypt_json
from tracking.models import (
    ApiToken,
    Call,
    Channel,
    Client,
    Pool,
    Role,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    User,
    VisitSession,
)
from tracking.models.numbers import NumberStatus


@pytest.fixture
def t(db):
    return make_tenant(db, "Acme")


@pytest.fixture
def admin(client, t):
    web_login(client, t.admin.email)
    return client


def post(client, url: str, data: dict | None = None, **kw):
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})}, **kw)


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_new_agency_creates_its_first_client(client, db) -> None:
    user = create_agency(db, "Fresh", "boss@fresh.example", PASSWORD)
    db.commit()
    web_login(client, user.email)
    home = client.get("/").get_data(as_text=True)
    assert "No clients yet." in home and 'href="/clients/new"' in home
    bad = post(client, "/clients/new", {"name": "Shop", "timezone": "Mars/Olympus", "currency": "RUB"})
    assert bad.status_code == 400
    assert "unknown time zone &#39;Mars/Olympus&#39;" in bad.get_data(as_text=True)
    assert count(db, Client) == 0
    ok = post(client, "/clients/new", {"name": "Shop", "timezone": "Asia/Yekaterinburg", "currency": "usd"})
    assert ok.status_code == 302
    made = db.scalars(select(Client)).one()
    assert (made.name, made.timezone, made.currency, made.agency_id) == (
        "Shop",
        "Asia/Yekaterinburg",
        "USD",
        user.agency_id,
    )
    assert ok.headers["Location"].endswith(f"/clients/{made.id}/settings")


def test_client_settings_rename_and_refuse_bad_currency(admin, db, t) -> None:
    url = f"/clients/{t.client.id}/settings"
    assert "Settings" in admin.get(f"/clients/{t.client.id}").get_data(as_text=True)
    bad = post(admin, url, {"name": "New name", "timezone": "Europe/Moscow", "currency": "RU"})
    assert bad.status_code == 400 and "must be an ISO 4217 code such as RUB" in bad.get_data(as_text=True)
    db.expire_all()
    assert db.get(Client, t.client.id).name == "Acme Client"
    assert (
        post(admin, url, {"name": "New name", "timezone": "Europe/Samara", "currency": "EUR"}).status_code
        == 302
    )
    db.expire_all()
    c = db.get(Client, t.client.id)
    assert (c.name, c.timezone, c.currency) == ("New name", "Europe/Samara", "EUR")


SITE = {
    "name": "Main",
    "domains": "shop.example\nwww.shop.example",
    "replace_numbers": "8 (495) 765-43-21",
    "display_template": "8 (XXX) XXX-XX-XX",
    "promo_codes_enabled": "on",
    "swap_attributes": "data-phone",
}


def test_site_form_saves_and_shows_snippet_and_install_check(admin, db, t) -> None:
    url = f"/clients/{t.client.id}/settings/sites"
    bad = post(admin, url, {**SITE, "replace_numbers": "12"})
    assert bad.status_code == 400 and 'id="err-replace_numbers"' in bad.get_data(as_text=True)
    bad = post(admin, url, {**SITE, "swap_attributes": "onclick"})
    assert bad.status_code == 400 and "not on*, href, src or style" in bad.get_data(as_text=True)
    assert count(db, Site) == 1
    assert post(admin, url, SITE).status_code == 302
    site = db.scalars(select(Site).where(Site.name == "Main")).one()
    assert site.domains == ["shop.example", "www.shop.example"]
    assert site.replace_numbers == ["+74957654321"]
    assert (site.display_template, site.promo_codes_enabled, site.swap_attributes) == (
        "8 (XXX) XXX-XX-XX",
        True,
        ["data-phone"],
    )
    page = admin.get(f"/settings/sites/{site.id}").get_data(as_text=True)
    assert site.site_key in page and 'data-copy="snippet-tag"' in page
    assert "has not reported a visit yet" in page
    db.add(
        VisitSession(
            public_id="s1",
            client_id=t.client.id,
            site_id=site.id,
            visitor_id="v" * 12,
            landing_url="https://shop.example/sofas?utm_source=yandex",
        )
    )
    db.commit()
    page = admin.get(f"/settings/sites/{site.id}").get_data(as_text=True)
    assert "last seen on <code>https://shop.example/sofas?utm_source=yandex</code>" in page
    # Editing keeps what is not on the form's error path; a bad template changes nothing.
    bad = post(admin, f"/settings/sites/{site.id}", {**SITE, "display_template": "no digits"})
    assert bad.status_code == 400 and "must contain X for each digit" in bad.get_data(as_text=True)
    db.expire_all()
    assert db.get(Site, site.id).display_template == "8 (XXX) XXX-XX-XX"
    ok = post(admin, f"/settings/sites/{site.id}", {**SITE, "name": "Renamed"})
    assert ok.status_code == 302
    db.expire_all()
    assert db.get(Site, site.id).name == "Renamed" and db.get(Site, site.id).promo_codes_enabled


def test_channels_rules_presets_order_and_url_test(admin, db, t) -> None:
    url = f"/clients/{t.client.id}/settings/channels"
    bad = post(admin, url, {"name": "Ads", "rules": "utm_source = x and colour = red"})
    assert bad.status_code == 400 and "unknown condition(s): colour" in bad.get_data(as_text=True)
    bad = post(admin, url, {"name": "Ads", "rules": "utm_source"})
    assert bad.status_code == 400 and "write each condition as name = value" in bad.get_data(as_text=True)
    assert count(db, Channel) == 0
    assert post(admin, url, {"preset": "Yandex Direct"}).status_code == 302
    assert (
        post(
            admin,
            url,
            {"name": "VK ads", "rules": "utm_source = vk and utm_medium = cpc*\nreferrer_domain = vk.com"},
        ).status_code
        == 302
    )
    yandex = db.scalars(select(Channel).where(Channel.name == "Yandex Direct")).one()
    vk = db.scalars(select(Channel).where(Channel.name == "VK ads")).one()
    assert yandex.rules == [{"has_yclid": True}, {"utm_source": "yandex", "utm_medium": "cpc"}]
    assert vk.rules == [{"utm_source": "vk", "utm_medium": "cpc*"}, {"referrer_domain": "vk.com"}]
    assert yandex.position < vk.position
    post(admin, f"/settings/channels/{vk.id}/move", {"direction": "up"})
    db.expire_all()
    assert db.get(Channel, vk.id).position < db.get(Channel, yandex.id).position
    before = snapshot(db)
    test = post(admin, url, {"action": "test", "landing": "https://shop.example/?yclid=123", "referrer": ""})
    assert "would get the channel <strong>Yandex Direct</strong>" in test.get_data(as_text=True)
    test = post(
        admin,
        url,
        {"action": "test", "landing": "https://shop.example/", "referrer": "https://m.vk.com/feed"},
    )
    assert "<strong>VK ads</strong>" in test.get_data(as_text=True)
    post(admin, url, {"name": "Sale page", "rules": "landing_path = /sale/*"})
    test = post(admin, url, {"action": "test", "landing": "https://shop.example/sale/x", "referrer": ""})
    assert "<strong>Sale page</strong>" in test.get_data(as_text=True)
    before = snapshot(db)
    test = post(admin, url, {"action": "test", "landing": "https://shop.example/", "referrer": ""})
    assert "<strong>Direct / unknown</strong>" in test.get_data(as_text=True)
    assert snapshot(db) == before  # testing a URL writes nothing, not even the default channel
    edit = post(admin, f"/settings/channels/{vk.id}", {"name": "VK", "rules": "has_gclid = maybe"})
    assert edit.status_code == 400 and "has_gclid takes yes or no" in edit.get_data(as_text=True)
    assert (
        post(admin, f"/settings/channels/{vk.id}", {"name": "VK", "rules": "utm_source = vk"}).status_code
        == 302
    )
    db.expire_all()
    assert (db.get(Channel, vk.id).name, db.get(Channel, vk.id).rules) == ("VK", [{"utm_source": "vk"}])


def test_numbers_paste_many_reports_bad_lines_and_assigns(admin, db, t) -> None:
    ch = Channel(client_id=t.client.id, name="Billboard", offline=True)
    db.add(ch)
    db.commit()
    url = f"/clients/{t.client.id}/settings/numbers"
    resp = post(admin, url, {"numbers": "8 (499) 111-22-33\nnot a number\n+7 499 111 22 44\n", "assign": ""})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="bad-lines"' in page and "not a number" in page
    assert sorted(db.scalars(select(TrackingNumber.e164))) == ["+74991112233", "+74991112244"]
    post(admin, url, {"numbers": "+74991112255", "assign": f"channel:{ch.id}"})
    static = db.scalars(select(TrackingNumber).where(TrackingNumber.e164 == "+74991112255")).one()
    assert static.channel_id == ch.id
    # Duplicates are refused line by line, with the API's own message.
    again = post(admin, url, {"numbers": "+74991112255"})
    assert again.status_code == 400 and "already a number of a client of this agency" in again.get_data(
        as_text=True
    )
    assert post(admin, f"/settings/numbers/{static.id}", {"status": "quarantined"}).status_code == 302
    db.expire_all()
    n = db.get(TrackingNumber, static.id)
    assert n.status == NumberStatus.QUARANTINED and n.channel_id is None
    bad = post(admin, f"/settings/numbers/{static.id}", {"status": "sold"})
    assert bad.status_code == 400
    db.expire_all()
    assert db.get(TrackingNumber, static.id).status == NumberStatus.QUARANTINED


def test_pool_form_members_channels_and_refusals(admin, db, t) -> None:
    ch = Channel(client_id=t.client.id, name="Ads")
    nums = [TrackingNumber(client_id=t.client.id, e164=f"+7499222000{i}") for i in range(3)]
    db.add_all([ch, *nums])
    db.commit()
    url = f"/clients/{t.client.id}/settings/pools"
    base = {"name": "Main pool", "site_id": str(t.site.id), "hold_seconds": "600", "grace_seconds": "120"}
    bad = post(admin, url, {**base, "hold_seconds": "10"})
    assert bad.status_code == 400 and "greater than or equal to 30" in bad.get_data(as_text=True)
    bad = post(admin, url, {**base, "max_hold_seconds": "300"})
    assert bad.status_code == 400 and "must not be shorter than hold_seconds" in bad.get_data(as_text=True)
    assert count(db, Pool) == 0
    data = {**base, "max_hold_seconds": "3600", "fallback_number_id": str(nums[2].id)}
    resp = admin.post(
        url,
        data={
            **data,
            "csrf_token": csrf(admin),
            "channel_ids": [str(ch.id)],
            "number_ids": [str(nums[0].id), str(nums[1].id)],
        },
    )
    assert resp.status_code == 302
    pool = db.scalars(select(Pool)).one()
    assert (pool.hold_seconds, pool.grace_seconds, pool.max_hold_seconds) == (600, 120, 3600)
    assert pool.fallback_number_id == nums[2].id
    assert sorted(n.id for n in pool.numbers) == [nums[0].id, nums[1].id]
    assert [pc.channel_id for pc in pool.served_channels] == [ch.id]
    page = admin.get(f"/settings/pools/{pool.id}").get_data(as_text=True)
    assert "0 of 2 active numbers held" in page
    clash = admin.post(
        f"/settings/pools/{pool.id}",
        data={**data, "csrf_token": csrf(admin), "number_ids": [str(nums[2].id)]},
    )
    assert clash.status_code == 400 and "fallback number cannot also be a pool member" in clash.get_data(
        as_text=True
    )
    db.expire_all()
    assert sorted(n.id for n in db.get(Pool, pool.id).numbers) == [nums[0].id, nums[1].id]


def test_generic_integration_secret_once_and_test_call_arrives(admin, db, t) -> None:
    ch = Channel(client_id=t.client.id, name="Radio")
    db.add(ch)
    db.flush()
    db.add(TrackingNumber(client_id=t.client.id, e164="+74993330000", channel_id=ch.id))
    db.commit()
    url = f"/clients/{t.client.id}/settings/telephony"
    bad = post(admin, url, {"provider": "twilio", "secrets.auth_token": ""})
    assert bad.status_code == 400 and "secrets.auth_token: is required" in bad.get_data(as_text=True)
    assert post(admin, url, {"provider": "skype"}).status_code == 400
    assert count(db, TelephonyIntegration) == 0
    made = post(admin, url, {"provider": "generic", "name": "Office PBX"})
    page = made.get_data(as_text=True)
    assert made.status_code == 201
    secret = re.search(r'<code id="secret-secret">([^<]+)</code>', page).group(1)
    integ = db.scalars(select(TelephonyIntegration)).one()
    assert f"http://hub.test/hooks/v1/generic/{integ.integration_key}" in page
    assert "X-Otkuda-Signature" in page  # the provider's own setup steps
    later = admin.get(url).get_data(as_text=True)
    assert secret not in later and "Last event received: none yet" in later
    sent = post(admin, f"{url}/{integ.id}/test-call")
    assert sent.status_code == 302
    arrived = admin.get(sent.headers["Location"]).get_data(as_text=True)
    call = db.scalars(select(Call)).one()
    assert (
        call.called_number == "+74993330000" and call.integration_id == integ.id and call.channel_id == ch.id
    )
    assert f"Test call #{call.id} arrived" in arrived and "<strong>Radio</strong>" in arrived
    assert "Last event received: call #" in arrived


def test_test_call_needs_a_number(admin, db, t) -> None:
    post(admin, f"/clients/{t.client.id}/settings/telephony", {"provider": "generic"})
    integ = db.scalars(select(TelephonyIntegration)).one()
    resp = post(admin, f"/clients/{t.client.id}/settings/telephony/{integ.id}/test-call")
    assert "add an active tracking number first" in admin.get(resp.headers["Location"]).get_data(as_text=True)
    assert count(db, Call) == 0


def test_users_tokens_and_passwords(admin, db, t) -> None:
    bad = post(
        admin, "/settings/users", {"email": "v@acme.example", "password": "long enough pw", "role": "viewer"}
    )
    assert bad.status_code == 400 and "a viewer needs one client" in bad.get_data(as_text=True)
    bad = post(admin, "/settings/users", {"email": "m@acme.example", "password": "short", "role": "manager"})
    assert bad.status_code == 400 and "at least 10 characters" in bad.get_data(as_text=True)
    assert count(db, User) == 1
    ok = post(
        admin,
        "/settings/users",
        {
            "email": "v@acme.example",
            "password": "long enough pw",
            "role": "viewer",
            "client_id": str(t.client.id),
        },
    )
    assert ok.status_code == 302
    viewer = db.scalars(select(User).where(User.email == "v@acme.example")).one()
    assert viewer.role == Role.VIEWER and viewer.client_id == t.client.id
    short = post(admin, f"/settings/users/{viewer.id}/password", {"password": "short"})
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    post(admin, f"/settings/users/{viewer.id}/password", {"password": "another long one"})
    db.expire_all()
    assert authenticate(db, "v@acme.example", "long enough pw") is None
    assert authenticate(db, "v@acme.example", "another long one") is not None
    issued = post(admin, f"/settings/users/{viewer.id}/tokens", {"name": "bi"})
    token = re.search(r'<code id="new-token">([^<]+)</code>', issued.get_data(as_text=True)).group(1)
    assert user_for_token(db, token).id == viewer.id
    db.commit()  # the look-up stamps last_used_at; release the write lock for the app
    row = db.scalars(select(ApiToken).where(ApiToken.user_id == viewer.id)).one()
    assert token not in admin.get("/settings/users").get_data(as_text=True)
    post(admin, f"/settings/tokens/{row.id}/revoke")
    db.expire_all()
    assert user_for_token(db, token) is None


def test_viewers_and_managers(client, db, t) -> None:
    make_user(db, t, "viewer@acme.example", Role.VIEWER, client=t.client)
    make_user(db, t, "manager@acme.example", Role.MANAGER)
    web_login(client, "viewer@acme.example")
    assert "Settings" not in client.get(f"/clients/{t.client.id}").get_data(as_text=True)
    assert "New client" not in client.get("/").get_data(as_text=True)
    before = snapshot(db)
    for url in (
        "/clients/new",
        f"/clients/{t.client.id}/settings",
        f"/clients/{t.client.id}/settings/sites",
        f"/clients/{t.client.id}/settings/channels",
        f"/clients/{t.client.id}/settings/numbers",
        f"/clients/{t.client.id}/settings/pools",
        f"/clients/{t.client.id}/settings/telephony",
        f"/settings/sites/{t.site.id}",
        "/settings/users",
    ):
        assert client.get(url).status_code == 403, url
        assert post(client, url, {"name": "x", "numbers": "+74990000000"}).status_code == 403, url
    assert snapshot(db) == before
    client.post("/logout", data={"csrf_token": csrf(client)})
    web_login(client, "manager@acme.example")
    assert client.get(f"/clients/{t.client.id}/settings/sites").status_code == 200
    assert client.get("/settings/users").status_code == 403  # users are the admins' alone


def test_another_agencys_users_and_tokens_are_hidden(client, db, t) -> None:
    other = make_tenant(db, "Other")
    token = db.scalars(select(ApiToken).where(ApiToken.user_id == other.admin.id)).one()
    web_login(client, t.admin.email)
    before = snapshot(db)
    for url in (
        f"/settings/users/{other.admin.id}/password",
        f"/settings/users/{other.admin.id}/tokens",
        f"/settings/tokens/{token.id}/revoke",
    ):
        assert post(client, url, {"password": "a long password"}).status_code == 404, url
    assert snapshot(db) == before
    assert other.admin.email not in client.get("/settings/users").get_data(as_text=True)


def test_unconfigured_provider_says_which_variables_and_redirect_uri(admin, t) -> None:
    resp = admin.get(f"/clients/{t.client.id}/connections/connect/amocrm")
    assert resp.status_code == 302 and "/settings/connections" in resp.headers["Location"]
    page = admin.get(resp.headers["Location"]).get_data(as_text=True)
    row = page.split('id="provider-amocrm-amocrm"')[1].split("</tr>")[0]
    assert "not configured" in row
    assert "<code>OTKUDA_AMOCRM_CLIENT_ID</code>" in row and "<code>OTKUDA_AMOCRM_CLIENT_SECRET</code>" in row
    assert "<code>http://hub.test/oauth/callback</code>" in row


def test_configured_provider_offers_connect(app, db, t) -> None:
    app.config["AMOCRM_CLIENT_ID"] = "id"
    app.config["AMOCRM_CLIENT_SECRET"] = "secret"
    client = app.test_client()
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/settings/connections").get_data(as_text=True)
    row = page.split('id="provider-amocrm-amocrm"')[1].split("</tr>")[0]
    assert "ready" in row and "/connections/connect/amocrm" in row and "OTKUDA_AMOCRM_CLIENT_ID" not in row


def test_another_clients_ids_in_a_form_are_refused(admin, db, t) -> None:
    other = make_tenant(db, "Other")
    foreign = Channel(client_id=other.client.id, name="Theirs")
    db.add(foreign)
    db.flush()
    theirs = TrackingNumber(client_id=other.client.id, e164="+74995550000")
    db.add(theirs)
    db.commit()
    before = snapshot(db)
    resp = post(
        admin,
        f"/clients/{t.client.id}/settings/numbers",
        {"numbers": "+74995550001", "assign": f"channel:{foreign.id}"},
    )
    assert resp.status_code == 400 and "no such object for this client" in resp.get_data(as_text=True)
    post(admin, f"/clients/{t.client.id}/settings/telephony", {"provider": "generic"})
    integ = db.scalars(select(TelephonyIntegration)).one()
    sent = post(
        admin,
        f"/clients/{t.client.id}/settings/telephony/{integ.id}/test-call",
        {"number_id": str(theirs.id)},
    )
    assert "add an active tracking number first" in admin.get(sent.headers["Location"]).get_data(as_text=True)
    assert count(db, Call) == 0 and count(db, TrackingNumber) == len(before["tracking_numbers"])


def test_archive_and_bring_back_a_client(admin, db, t) -> None:
    url = f"/clients/{t.client.id}/settings"
    assert "Acme Client" in admin.get("/").get_data(as_text=True)
    done = post(admin, url, {"action": "archive"})
    assert done.status_code == 302
    db.expire_all()
    assert db.get(Client, t.client.id).archived_at is not None
    assert "Acme Client" not in admin.get("/").get_data(as_text=True)
    shown = admin.get("/?archived=1").get_data(as_text=True)
    assert "Acme Client" in shown and ">archived</small>" in shown
    page = admin.get(url).get_data(as_text=True)
    assert 'id="archived-note"' in page and "Bring back from the archive" in page
    assert 'id="archived-note"' in admin.get(f"/clients/{t.client.id}/calls").get_data(as_text=True)
    assert "Клиент в архиве" in admin.get(url, headers={"Accept-Language": "ru"}).get_data(as_text=True)
    post(admin, url, {"action": "unarchive"})
    db.expire_all()
    assert db.get(Client, t.client.id).archived_at is None
    assert "Acme Client" in admin.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("provider", "secrets", "settings"),
    [
        ("generic", {}, {}),
        ("twilio", {"secrets.auth_token": "tw-token"}, {}),
        ("zadarma", {"secrets.api_secret": "zd-secret"}, {"settings.timezone": "Asia/Yekaterinburg"}),
        ("novofon", {"secrets.api_secret": "nf-secret"}, {}),
        ("mango", {"secrets.api_key": "mg-key", "secrets.api_salt": "mg-salt"}, {}),
    ],
)
def test_every_provider_sends_a_signed_test_call(app, admin, db, t, provider, secrets, settings) -> None:
    ch = Channel(client_id=t.client.id, name="Radio")
    db.add(ch)
    db.flush()
    db.add(TrackingNumber(client_id=t.client.id, e164="+74993330000", channel_id=ch.id))
    db.commit()
    url = f"/clients/{t.client.id}/settings/telephony"
    assert post(admin, url, {"provider": provider, "name": "Line", **secrets, **settings}).status_code == 201
    integ = db.scalars(select(TelephonyIntegration)).one()
    sent = post(admin, f"{url}/{integ.id}/test-call")
    assert sent.status_code == 302 and "arrived=" in sent.headers["Location"]
    arrived = admin.get(sent.headers["Location"]).get_data(as_text=True)
    call = db.scalars(select(Call)).one()
    assert (call.called_number, call.integration_id, call.channel_id) == ("+74993330000", integ.id, ch.id)
    assert call.provider == provider and call.caller.startswith("+7999000")
    assert f"Test call #{call.id} arrived" in arrived and "Last event received: call #" in arrived

    # A secret re-entered on the page is the one the webhook checks from then on, and the one the test
    # call is signed with.
    if provider != "generic":
        key = next(iter(secrets))
        changed = {"name": "Line", "active": "on", **secrets, key: "re-keyed", **settings}
        post(admin, f"{url}/{integ.id}", changed)
        db.expire_all()
        stored = decrypt_json(app.config["ENCRYPTION_KEY"], integ.secrets_encrypted)
        assert stored[key.split(".")[1]] == "re-keyed"
        again = post(admin, f"{url}/{integ.id}/test-call").headers["Location"]
        assert "arrived=" in again, admin.get(again).get_data(as_text=True).split('class="flash"')[2][:300]
        assert count(db, Call) == 2


def test_integration_edit_rotate_and_delete(admin, db, t) -> None:
    db.add(TrackingNumber(client_id=t.client.id, e164="+74993330000"))
    db.commit()
    url = f"/clients/{t.client.id}/settings/telephony"
    made = post(admin, url, {"provider": "generic", "name": "Office PBX"}).get_data(as_text=True)
    old = re.search(r'<code id="secret-secret">([^<]+)</code>', made).group(1)
    integ = db.scalars(select(TelephonyIntegration)).one()
    assert post(admin, f"{url}/{integ.id}/test-call").status_code == 302
    assert count(db, Call) == 1

    # Renamed and paused; the secret left empty stays.
    post(admin, f"{url}/{integ.id}", {"name": "Front desk"})
    db.expire_all()
    assert (integ.name, integ.active) == ("Front desk", False)
    paused = post(admin, f"{url}/{integ.id}/test-call")
    assert "the integration is paused" in admin.get(paused.headers["Location"]).get_data(as_text=True)
    post(admin, f"{url}/{integ.id}", {"name": "Front desk", "active": "on"})

    rotated = post(admin, f"{url}/{integ.id}/rotate")
    new = re.search(r'<code id="secret-secret">([^<]+)</code>', rotated.get_data(as_text=True)).group(1)
    assert rotated.status_code == 201 and new != old
    assert new not in admin.get(url).get_data(as_text=True)
    # The new secret is the one the webhook now checks: a test call signed with it arrives.
    assert "arrived=" in post(admin, f"{url}/{integ.id}/test-call").headers["Location"]
    assert count(db, Call) == 2

    kept = post(admin, f"{url}/{integ.id}/delete", {"confirm": "Office PBX"})
    assert "Not deleted" in admin.get(kept.headers["Location"]).get_data(as_text=True)
    assert count(db, TelephonyIntegration) == 1
    key = integ.integration_key
    post(admin, f"{url}/{integ.id}/delete", {"confirm": "Front desk"})
    assert count(db, TelephonyIntegration) == 0 and count(db, Call) == 2
    assert admin.post(f"/hooks/v1/generic/{key}", data=b"{}").status_code == 404


def test_setup_times_are_in_the_clients_zone(admin, db, t) -> None:
    import datetime as dt

    t.client.timezone = "Asia/Yekaterinburg"  # UTC+5
    seen = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)
    db.add(
        VisitSession(
            public_id="s1",
            client_id=t.client.id,
            site_id=t.site.id,
            visitor_id="v" * 12,
            landing_url="https://acme.example/",
            started_at=seen,
            last_seen_at=seen,
        )
    )
    db.commit()
    page = admin.get(f"/settings/sites/{t.site.id}").get_data(as_text=True)
    assert "2026-03-02 15:30 (Asia/Yekaterinburg)" in page and "10:30" not in page
    listed = admin.get(f"/clients/{t.client.id}/settings/sites").get_data(as_text=True)
    assert "last seen 2026-03-02 15:30" in listed and " UTC" not in listed


def test_rule_builder_degrades_to_the_text_field(admin, db, t) -> None:
    page = admin.get(f"/clients/{t.client.id}/settings/channels").get_data(as_text=True)
    # Without scripts the text field is the form; the builder starts hidden and carries what it needs.
    assert '<textarea name="rules"' in page
    builder = re.search(r'<div class="rule-builder" id="rule-builder"[^>]*>', page).group(0)
    assert " hidden" in builder and 'data-for="rules"' in builder and "referrer_domain" in builder
    assert "<script>" not in page  # the page runs under a CSP without inline scripts
    ru = admin.get(f"/clients/{t.client.id}/settings/channels", headers={"Accept-Language": "ru"})
    assert json.dumps("Домен источника перехода")[1:-1] in ru.get_data(as_text=True)  # in data-labels
    # What the builder writes (one rule per line, "and" within) is what the schema validates.
    made = post(
        admin,
        f"/clients/{t.client.id}/settings/channels",
        {"name": "VK", "rules": "referrer_domain = vk.com\nutm_source = vk and has_yclid = no"},
    )
    assert made.status_code == 302
    ch = db.scalars(select(Channel).where(Channel.name == "VK")).one()
    assert ch.rules == [{"referrer_domain": "vk.com"}, {"utm_source": "vk", "has_yclid": False}]


def test_every_telephony_adapters_words_are_translated(admin, t) -> None:
    from babel.messages.pofile import read_po

    from hub.plugins import form_fields
    from tracking.telephony import PROVIDERS, adapter

    with open("hub/translations/ru/LC_MESSAGES/messages.po", "rb") as f:
        catalogue = {m.id: m.string for m in read_po(f) if m.id and m.string}
    for provider in dict.fromkeys(PROVIDERS):
        module = adapter(provider)
        texts = list(getattr(module, "SETUP_STEPS", ()))
        texts += [f.description for part in (module.Secrets, module.Settings) for f in form_fields(part)]
        missing = [text for text in texts if text and text not in catalogue]
        assert not missing, f"add {provider}'s words to PROVIDER_TEXTS in hub/web/setup.py: {missing}"
    page = admin.get(f"/clients/{t.client.id}/settings/telephony", headers={"Accept-Language": "ru"})
    assert "В консоли Twilio откройте" in page.get_data(as_text=True)
