"""The web UI's language: the person's choice, then the browser's, then the hub's default; and the Russian
catalogue compiled from its source."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.factories import csrf, make_tenant, web_login

CATALOGUE = Path(__file__).resolve().parent.parent / "hub" / "translations" / "ru" / "LC_MESSAGES"


def _logged_in(make_hub, db, **overrides):
    tenant = make_tenant(db)
    client = make_hub(**overrides).test_client()
    web_login(client, tenant.admin.email)
    return client


def test_browser_language_picks_russian_or_english(make_hub, db) -> None:
    client = _logged_in(make_hub, db)
    ru = client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}, follow_redirects=True)
    assert '<html lang="ru"' in ru.text and "Клиенты" in ru.text and ">Log out<" not in ru.text
    en = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}, follow_redirects=True)
    assert '<html lang="en"' in en.text and ">Log out<" in en.text and "Клиенты" not in en.text


def test_default_language_when_the_browser_asks_for_neither(make_hub, db) -> None:
    client = _logged_in(make_hub, db, DEFAULT_LANGUAGE="ru")
    page = client.get("/", headers={"Accept-Language": "de-DE"}, follow_redirects=True)
    assert '<html lang="ru"' in page.text
    bare = client.get("/", follow_redirects=True)
    assert '<html lang="ru"' in bare.text


def test_the_switch_remembers_the_choice_over_the_browser(make_hub, db) -> None:
    client = _logged_in(make_hub, db)
    resp = client.post("/language", data={"lang": "ru", "next": "/?period=7", "csrf_token": csrf(client)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/?period=7")
    page = client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="ru"' in page.text and "Клиенты" in page.text
    # An unknown language changes nothing, and a foreign "next" is not followed.
    resp = client.post(
        "/language", data={"lang": "xx", "next": "//evil.example/", "csrf_token": csrf(client)}
    )
    assert resp.status_code == 302 and "evil.example" not in resp.headers["Location"]
    assert '<html lang="ru"' in client.get("/", headers={"Accept-Language": "en"}).text


def test_the_switch_needs_the_form_token(make_hub, db) -> None:
    client = _logged_in(make_hub, db)
    resp = client.post("/language", data={"lang": "ru", "next": "/?period=7"})
    assert resp.status_code in (400, 403)
    assert '<html lang="en"' in client.get("/", headers={"Accept-Language": "en"}).text


def test_compiled_catalogue_matches_its_source() -> None:
    with (CATALOGUE / "messages.po").open("rb") as f:
        source = read_po(f, locale="ru")
    with (CATALOGUE / "messages.mo").open("rb") as f:
        compiled = read_mo(f)

    # Plural entries come back from the .mo as lists, from the .po as tuples: compare them as tuples.
    def key(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    wanted = {key(m.id): key(m.string) for m in source if m.id and m.string and not m.fuzzy}
    got = {key(m.id): key(m.string) for m in compiled if m.id}
    assert got == wanted, "run `make translations` after editing messages.po"


def test_refusals_of_the_domain_read_in_the_page_language(make_hub, db) -> None:
    from tests.test_i18n_pages import build_world
    from tracking.models import Call

    tenant = make_tenant(db)
    build_world(db, tenant)
    call = db.query(Call).filter_by(provider_call_id="c-quokka").one()
    client = make_hub().test_client()
    web_login(client, tenant.admin.email)
    url = f"/clients/{tenant.client.id}/calls/{call.id}"
    form = {"action": "promo", "code": "X" * 40, "csrf_token": csrf(client)}
    ru = client.post(url, data=form, headers={"Accept-Language": "ru"})
    assert ru.status_code == 400
    assert "Промокод: должно быть промокодом, который назвал звонящий (до 32 символов)" in ru.text
    en = client.post(url, data=form, headers={"Accept-Language": "en"})
    assert "Promo code: must be the promo code the caller named (up to 32 characters)" in en.text
    bad = client.get(f"/clients/{tenant.client.id}/calls?from=yesterday", headers={"Accept-Language": "ru"})
    assert bad.status_code == 400
    assert "С: должно быть датой (ГГГГ-ММ-ДД) или временем ISO 8601 с часовым поясом" in bad.text


def test_error_pages_and_login_speak_russian(make_hub, db) -> None:
    tenant = make_tenant(db)
    client = make_hub().test_client()
    login = client.get("/login", headers={"Accept-Language": "ru"})
    assert "<h1>Войти</h1>" in login.text and "Пароль" in login.text
    wrong = client.post(
        "/login",
        data={"email": tenant.admin.email, "password": "nope", "csrf_token": csrf(client)},
        headers={"Accept-Language": "ru"},
    )
    assert wrong.status_code == 401 and "Неверный e-mail или пароль." in wrong.text
    web_login(client, tenant.admin.email)
    missing = client.get(f"/clients/{2**31 - 1}", headers={"Accept-Language": "ru"})
    assert (
        missing.status_code == 404
        and "Здесь ничего нет" in missing.text
        and "Nothing here" not in missing.text
    )


def test_days_and_months_in_words_follow_the_page_language(make_hub, db) -> None:
    import datetime as dt

    from hub.formatting import duration, long_date, month_name

    app = make_hub()
    day = dt.date(2026, 11, 30)
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        assert long_date(day) == "30 ноября 2026\u202fг." and month_name(day) == "ноябрь 2026"
        assert duration(95) == "1\u00a0мин 35\u00a0с"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert long_date(day) == "November 30, 2026" and month_name(day) == "November 2026"
        assert duration(95) == "1\u00a0min 35\u00a0s"
