"""Which connectors exist and how to load them.

Modules are imported only when used, so a web worker that never pushes to Google Ads never imports
``google.ads`` (a large import). Each connector package exposes:

- ``PROVIDER``: its ``connectors.base.OAuthProvider``;
- ``CAPABILITIES``: a set drawn from {"push_calls", "push_deals", "spend", "deals"};
- ``make_connector(ctx: AccountContext) -> Connector``;
- optionally ``ACCOUNT_FIELDS``: the ``connectors.base.AccountField`` s a person types for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

from connectors.base import AccountField

CONNECTORS: dict[str, str] = {
    "amocrm": "connectors.amocrm",
    "metrika": "connectors.metrika",
    "yandex_direct": "connectors.yandex_direct",
    "google_ads": "connectors.google_ads",
    "webhook": "connectors.webhook",
    "ga4": "connectors.ga4",
    "email": "connectors.email",
    "telegram": "connectors.telegram",
}


def load(name: str) -> ModuleType:
    try:
        module_path = CONNECTORS[name]
    except KeyError:
        raise LookupError(f"unknown connector {name!r}") from None
    return importlib.import_module(module_path)


def account_fields(connectors: Iterable[str]) -> dict[str, AccountField]:
    """The typed account fields of these connectors, by name."""
    fields: dict[str, AccountField] = {}
    for name in connectors:
        for f in getattr(load(name), "ACCOUNT_FIELDS", ()):
            fields[f.name] = f
    return fields
