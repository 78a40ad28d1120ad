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
