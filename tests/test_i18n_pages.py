"""Every page renders in both languages without an untranslated string.

The proof does not trust a hand-kept list of strings. It extracts the message ids from the hub's code the way
``make translations`` does, builds a pseudo-catalogue in which every translation is the id wrapped in
``⟦…⟧``, and renders every page of the web UI under it, with a world that holds one of everything. Text a
person can read (text nodes, and the title / placeholder / aria-label / alt attributes) must then be either
inside the markers or data the world put there; Latin letters anywhere else are a string that bypassed the
translation layer. The same walk with the real Russian catalogue must show none of the catalogue's English,
and the Russian catalogue must translate every id the code uses.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tests.factories import Tenant, make_tenant, make_user, web_login
from tracking import call_journal
from tracking.db import utcnow
from tracking.models import (
    Call,
    CallCandidate,
    CallStatus,
    Channel,
    Connection,
    ConnectionStatus,
    Deal,
    DealStatus,
    Delivery,
    DeliveryStatus,
    ManualSpend,
    Pool,
    Role,
    SyncRun,
    TargetRule,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)

ROOT = Path(__file__).resolve().parent.parent
RU_PO = ROOT / "hub" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
OPEN, CLOSE = "⟦", "⟧"

# Words that are the same in every language: the product's name and file formats.
SAME_IN_EVERY_LANGUAGE = {"Otkuda", "openapi.json"}

# Codes and acronyms (amoCRM's UTM_SOURCE field, ROMI, CSV): the same in every language.
CODE = re.compile(r"\b_?[A-Z][A-Z0-9_]{2,}\b")
# Addresses a person types or copies (placeholders, examples) and channel rules written in their own syntax
# ("utm_source = yandex and utm_medium = cpc"): the same in every language.
URL = re.compile(r"https?://\S+")
RULE = re.compile(r"\b[a-z_]+ = \S+(?: and (?=[a-z_]+ = ))?")
# What a person reads besides text: these attributes.
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
# Elements whose content is not prose: scripts and styles, and code a person copies (ids, keys, snippets).
NOT_PROSE = {"script", "style", "code", "pre", "textarea"}


def extracted_ids() -> set[str | tuple[str, str]]:
    """The message ids of the hub's code, extracted as ``make translations`` does (babel.cfg)."""
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    ids: set[str | tuple[str, str]] = set()
    for method_map in ([("**.py", "python")], [("templates/**.html", "jinja2")]):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / "hub", method_map=method_map, keywords=keywords
        ):
            ids.add(tuple(message) if isinstance(message, list | tuple) else message)
    return ids


@pytest.fixture(scope="module")
def message_ids() -> set[str | tuple[str, str]]:
    return extracted_ids()


def marked(message: str) -> str:
    """The message in markers, its placeholders left outside them: what fills a placeholder is checked on its
    own (a translated word brings its own markers, data is the world's, anything else is caught)."""
    return OPEN + re.sub(r"%\([a-z_]+\)s", lambda m: CLOSE + m.group(0) + OPEN, message) + CLOSE


def pseudo_catalogue(ids: set[str | tuple[str, str]], where: Path) -> Path:
    """A "ru" catalogue whose every translation is its id in markers, so a page shows what went through it."""
    catalog = Catalog(locale="ru")
    for mid in ids:
        if isinstance(mid, tuple):
            singular, plural = mid[0], mid[1]
            catalog.add(mid, tuple(marked(s) for s in (singular, plural, plural)))
        else:
            catalog.add(mid, marked(mid))
    folder = where / "ru" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as f:
        write_mo(f, catalog)
    return where


class ReadableText(HTMLParser):
    """The strings a person reads on a page: text outside scripts, styles and code, and read attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and not self.skipping:
                self.texts.append(value)
        # An element that names its own language (the switch's "English") is written in it on purpose.
        own_language = tag != "html" and any(name == "lang" for name, _ in attrs)
        if tag in NOT_PROSE or own_language or self.skipping:
            self.skipping.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and not self.skipping:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skipping:
            while self.skipping and self.skipping.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data)
        elif self.skipping and (OPEN in data or CLOSE in data):
            # A translated sentence may hold code (``⟦<code>name</code> → field⟧``): its markers still count.
            self.texts.append(OPEN * data.count(OPEN) + CLOSE * data.count(CLOSE))


def readable(html: str) -> list[str]:
    parser = ReadableText()
    parser.feed(html)
    return parser.texts


def unmarked(texts: list[str]) -> list[str]:
    """What is left of each text once everything between markers is taken out; a translated sentence may
    span several text nodes (``⟦Target call: <b>x</b>⟧``), so the depth carries from one to the next."""
    out, depth = [], 0
    for text in texts:
        kept = []
        for ch in text:
            if ch in (OPEN, CLOSE):
                depth = depth + 1 if ch == OPEN else max(depth - 1, 0)
                kept.append(" ")  # what stood on either side of a translation is not one word
            elif depth == 0:
                kept.append(ch)
        out.append("".join(kept))
    return out


def untranslated(html: str, data: list[str]) -> list[str]:
    """The readable strings with Latin letters that are neither translated (marked) nor the world's data."""
    found = []
    known = sorted(set(data) | SAME_IN_EVERY_LANGUAGE, key=len, reverse=True)
    texts = readable(html)
    for text, rest in zip(texts, unmarked(texts), strict=True):
        rest = RULE.sub(" ", URL.sub(" ", rest))
        for value in known:
            rest = rest.replace(value, " ")
        rest = CODE.sub(" ", rest)
        if re.search(r"[A-Za-z]", rest):
            found.append(text.strip())
    return found


def build_world(db, t: Tenant) -> list[str]:
    """One of everything a page shows, with names a reader can tell from the UI's own words; returns the
    strings the world put into the database that pages may show as they are."""
    user = t.admin
    channel = Channel(client_id=t.client.id, name="Quokka Channel", rules=[{"utm_source": "quokka"}])
    other = Channel(client_id=t.client.id, name="Wombat Channel", rules=[{"utm_source": "wombat"}])
    db.add_all([channel, other])
    db.flush()
    pool = Pool(client_id=t.client.id, site_id=t.site.id, name="Quokka Pool")
    db.add(pool)
    db.flush()
    number = TrackingNumber(client_id=t.client.id, e164="+74995550101", pool_id=pool.id)
    static = TrackingNumber(client_id=t.client.id, e164="+74995550102", channel_id=channel.id)
    now = utcnow()
    visit = VisitSession(
        public_id="sQuokka1",
        client_id=t.client.id,
        site_id=t.site.id,
        visitor_id="vQuokkaVisitor",
        channel_id=channel.id,
        started_at=now - dt.timedelta(minutes=20),
        last_seen_at=now - dt.timedelta(minutes=2),
        landing_url="https://quokka.example/landing?utm_source=quokka",
        referrer="https://search.example/q=quokka",
        utm_source="quokka",
        utm_medium="cpc",
        utm_campaign="quokka-campaign",
        utm_term="quokka-term",
        yclid="yclidQuokka",
        device="mobile",
    )
    integration = TelephonyIntegration(
        client_id=t.client.id, provider="generic", integration_key="key-quokka", secrets_encrypted="x"
    )
    rule = TargetRule(client_id=t.client.id, name="Quokka Rule", min_talk_seconds=10)
    db.add_all([number, static, visit, integration, rule])
    db.flush()
    call = Call(
        client_id=t.client.id,
        provider="generic",
        provider_call_id="c-quokka",
        called_at=now - dt.timedelta(minutes=1),
        caller="+79161234567",
        called_number="+74995550101",
        tracking_number_id=number.id,
        status=CallStatus.ANSWERED,
        wait_seconds=7,
        talk_seconds=95,
        session_id=visit.id,
        channel_id=channel.id,
        session_confidence=0.8,
        channel_confidence=0.9,
        recording_url="https://records.example/quokka.mp3",
        finalised_at=now,
    )
    earlier = Call(
        client_id=t.client.id,
        provider="generic",
        provider_call_id="c-quokka-0",
        called_at=now - dt.timedelta(days=2),
        caller="+79161234567",
        status=CallStatus.MISSED,
        channel_id=other.id,
        finalised_at=now - dt.timedelta(days=2),
    )
    db.add_all([call, earlier])
    db.flush()
    db.add(
        CallCandidate(
            call_id=call.id,
            session_id=visit.id,
            score=0.8,
            reasons={
                "seconds_since_activity": 130,
                "page_alive": True,
                "within_hold": True,
                "device": "mobile",
            },
        )
    )
    amo = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="amocrm",
        name="Quokka CRM",
        connectors=["amocrm"],
        account={"host": "quokka.amocrm.ru"},
        settings={"mode": "lead", "pipeline_id": 7, "deal_webhook": {"id": 1}},
        expires_at=now + dt.timedelta(days=30),
        last_sync_at=now,
    )
    yandex = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="yandex",
        connectors=["metrika"],
        status=ConnectionStatus.NEEDS_REAUTH,
    )
    chat = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="telegram",
        connectors=["telegram"],
        account={"chat_id": "-100500"},
        settings={"events": ["missed_call", "target_call"]},
    )
    mail = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="email",
        connectors=["email"],
        account={"to": "quokka-boss@quokka.example"},
        settings={"events": ["daily_digest"], "user_id": None},
    )
    db.add_all([amo, yandex, chat, mail])
    db.flush()
    deal = Deal(
        client_id=t.client.id,
        connection_id=amo.id,
        external_id="4242",
        status=DealStatus.WON,
        amount=Decimal("125000"),
        name="Quokka Deal",
        call_id=call.id,
    )
    deliveries = [
        Delivery(
            client_id=t.client.id,
            connection_id=amo.id,
            connector="amocrm",
            kind="call",
            key=f"quokka-item-{status}",
            payload={},
            status=DeliveryStatus(status),
            attempts=2,
            last_error="HTTP 502 from quokka.amocrm.ru" if status == "dead" else None,
        )
        for status in ("pending", "retry", "dead", "done", "skipped")
    ]
    runs = [
        SyncRun(
            job="deals", connector="amocrm", connection_id=amo.id, started_at=now, finished_at=now, items=3
        ),
        SyncRun(job="spend", connector="metrika", connection_id=yandex.id, started_at=now),
    ]
    spend = ManualSpend(
        client_id=t.client.id,
        channel_id=channel.id,
        period_start=dt.date.today().replace(day=1),
        period_end=dt.date.today(),
        amount=Decimal("5000"),
    )
    db.add_all([deal, *deliveries, *runs, spend])
    db.commit()
    # Changes made the way a person makes them, so the call page has its histories.
    call_journal.set_channel_by_hand(db, call, other.id, user, "Quokka said so")
    call_journal.set_tags_notes(db, call, user, ["quokka-tag"], "Quokka notes")
    db.commit()
    return [
        "tests",  # the API token tests.factories.make_tenant issues
        t.client.name,
        t.site.name,
        *t.site.domains,
        t.agency.name,
        user.email,
        "Quokka Channel",
        "Wombat Channel",
        "Quokka Pool",
        "Quokka Rule",
        "Quokka CRM",
        "Quokka Deal",
        "Quokka said so",
        "Quokka notes",
        "quokka-tag",
        "quokka-campaign",
        "quokka-term",
        "quokka",
        "cpc",
        "yclidQuokka",
        "https://quokka.example/landing?utm_source=quokka",
        "https://search.example/q=quokka",
        "quokka.amocrm.ru",
        "quokka-boss@quokka.example",
        "HTTP 502 from quokka.amocrm.ru",
        *(d.key for d in deliveries),
        t.client.timezone or "UTC",
        "UTC",
    ]


def page_urls(app, db, t: Tenant) -> list[tuple[str, str]]:
    """(endpoint, URL) of every page a person can open: each GET route of the web UI that answers HTML,
    filled from the world, plus the error pages."""
    ids = {
        "client_id": t.client.id,
        "call_id": db.query(Call).filter_by(provider_call_id="c-quokka").one().id,
        "site_id": t.site.id,
        "channel_id": db.query(Channel).filter_by(name="Quokka Channel").one().id,
        "pool_id": db.query(Pool).filter_by(name="Quokka Pool").one().id,
    }
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not (rule.endpoint.startswith("web.") or rule.endpoint == "api.docs"):
            continue
        if rule.endpoint in (
            "web.journal_download",
            "web.romi_download",
            "web.connect",
            "web.oauth_callback",
        ):
            continue  # files and redirects to other hosts, not pages
        missing = set(rule.arguments) - set(ids)
        assert not missing, f"{rule.rule}: add {missing} to the i18n world"
        with app.test_request_context():
            from flask import url_for

            pages.append((rule.endpoint, url_for(rule.endpoint, **{k: ids[k] for k in rule.arguments})))
    pages += [
        ("error.404", f"/clients/{2**31 - 1}/calls"),
        ("error.refused", f"/clients/{t.client.id}/calls?status=nonsense"),
        ("web.journal.filtered", f"/clients/{t.client.id}/calls?status=answered&first_time=true"),
        ("web.deliveries.filtered", f"/clients/{t.client.id}/deliveries?status=problems"),
    ]
    return pages


def _walk(client, pages, language: str) -> dict[str, str]:
    out = {}
    for endpoint, url in pages:
        resp = client.get(url, headers={"Accept-Language": language})
        assert resp.status_code in (200, 400, 403, 404), f"{url} answered {resp.status_code}"
        assert resp.mimetype == "text/html", url
        out[endpoint] = resp.get_data(as_text=True)
    return out


@pytest.fixture
def world(db):
    t = make_tenant(db, "Zorro")
    data = build_world(db, t)
    return t, data


def test_every_page_sends_every_string_through_the_translation_layer(
    make_hub, db, tmp_path, world, message_ids
) -> None:
    t, data = world
    app = make_hub(BABEL_TRANSLATION_DIRECTORIES=str(pseudo_catalogue(message_ids, tmp_path / "pseudo")))
    client = app.test_client()
    login = client.get("/login", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert not untranslated(login, data), untranslated(login, data)
    web_login(client, t.admin.email)
    pages = page_urls(app, db, t)
    assert len(pages) >= 12
    problems = {}
    for endpoint, html in _walk(client, pages, "ru").items():
        assert OPEN in html, f"{endpoint}: the pseudo-catalogue was not used"
        left = untranslated(html, data)
        if left:
            problems[endpoint] = left
    assert not problems, problems
    # A viewer's pages differ (no forms, events in words): they pass too.
    viewer = make_user(db, t, "quokka-viewer@zorro.example", Role.VIEWER, client=t.client)
    as_viewer = app.test_client()
    web_login(as_viewer, viewer.email)
    for endpoint, html in _walk(as_viewer, pages, "ru").items():
        assert not untranslated(html, [*data, viewer.email]), (endpoint, untranslated(html, data))


def test_the_check_catches_a_string_that_bypasses_the_layer() -> None:
    # The control for the walk above: an English word outside markers is found; data and marked words are not.
    page = '<p>⟦Calls⟧ Quokka Channel <b>Missed</b></p><input placeholder="digits"><code>utm_source</code>'
    assert untranslated(page, ["Quokka Channel"]) == ["Missed", "digits"]


def test_the_russian_catalogue_translates_every_message(message_ids) -> None:
    with RU_PO.open("rb") as f:
        catalogue = read_po(f, locale="ru")
    translated = {
        (tuple(m.id) if isinstance(m.id, list | tuple) else m.id)
        for m in catalogue
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(str(m) for m in message_ids - translated)
    assert not missing, f"run `make translations` and translate: {missing}"


def test_russian_pages_show_none_of_the_catalogues_english(make_hub, db, world) -> None:
    t, data = world
    with RU_PO.open("rb") as f:
        catalogue = read_po(f, locale="ru")
    # The English of every entry whose Russian differs, cut at its placeholders: pieces of two words or more.
    english = set()
    for m in catalogue:
        if not m.id or isinstance(m.id, tuple) or m.string == m.id:
            continue
        for piece in re.split(r"%\([a-z_]+\)s", m.id):
            piece = piece.strip(" .,:;()")
            if len(piece.split()) >= 2:
                english.add(piece)
    app = make_hub()
    client = app.test_client()
    web_login(client, t.admin.email)
    problems = {}
    for endpoint, html in _walk(client, page_urls(app, db, t), "ru").items():
        assert '<html lang="ru"' in html, endpoint
        shown = " ".join(readable(html))
        left = sorted(p for p in english if p in shown)
        if left:
            problems[endpoint] = left
    assert not problems, problems
