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
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from connectors.base import AccountField

CONNECTORS: dict[str, str] = {
    "amocrm": "connectors.amocrm",
    "metrika": "connectors.metrika",
    "yandex_direct": "connectors.yandex_direct",
    "google_ads": "connectors.google_ads",
}


def load(name: str) -> ModuleType:
    try:
        module_path = CONNECTORS[name]
    except KeyError:
        raise LookupError(f"unknown connector {name!r}") from None
    return importlib.import_module(module_path)


class InvalidAccount(ValueError):
    """An edit of a connection's account that is refused; nothing is changed."""


def account_fields(connectors: Iterable[str]) -> dict[str, AccountField]:
    """The typed account fields of these connectors, by name."""
    fields: dict[str, AccountField] = {}
    for name in connectors:
        for f in getattr(load(name), "ACCOUNT_FIELDS", ()):
            fields[f.name] = f
    return fields


def edited_account(connectors: Iterable[str], current: Mapping[str, Any], wanted: Any) -> dict[str, str]:
    """The account after a person's edit, or ``InvalidAccount``.

    Only typed fields (``ACCOUNT_FIELDS``) may be set, each validated; an empty value removes one. Facts the
    provider told us at connect time (an amoCRM host, an account id) stay as they are: a key naming one is
    accepted only with its current value, so a read-modify-write of the whole object still works.
    """
    if not isinstance(wanted, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in wanted.items()
    ):
        raise InvalidAccount("account must be an object of strings (e.g. counter_id, customer_id)")
    fields = account_fields(connectors)
    out = {k: str(v) for k, v in current.items() if k not in fields}
    for key, value in wanted.items():
        field = fields.get(key)
        if field is not None:
            if value.strip():
                try:
                    out[key] = field.clean(value)
                except ValueError as exc:
                    raise InvalidAccount(str(exc)) from None
        elif key not in current:
            typed = ", ".join(sorted(fields)) or "none"
            raise InvalidAccount(f"{key} is not an account field a person sets (these are: {typed})")
        elif str(current[key]) != value:
            raise InvalidAccount(f"{key} is learned when the account is connected: reconnect to change it")
    return out
