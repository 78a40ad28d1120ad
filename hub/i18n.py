"""The web UI's two languages: Russian and English, through Flask-Babel.

Every string a person reads goes through ``_`` / ``gettext`` (templates and Python alike); the catalogues
live in ``hub/translations`` and are written in English as message ids. The language is the person's own
choice (a cookie set by the switch in the header), else the best of the browser's languages, else the
hub's ``OTKUDA_DEFAULT_LANGUAGE``. Machines (the API, the snippet, webhooks) always get English.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale

LANGUAGES = ("ru", "en")
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}
COOKIE = "lang"
TRANSLATIONS = Path(__file__).parent / "translations"


def select_language() -> str:
    """The language of this request's page: the person's choice, then the browser's, then the default."""
    from flask import current_app

    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(LANGUAGES)
    return best or current_app.config.get("DEFAULT_LANGUAGE", "ru")


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    # A test may point this at a pseudo-catalogue that marks every translated string.
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_language)
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["language_names"] = LANGUAGE_NAMES
