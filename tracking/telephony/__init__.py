"""Telephony providers: each module verifies one provider's webhook signature and turns its payload into
the one normalised ``tracking.telephony.base.ProviderEvent`` that ``tracking.calls`` ingests."""

from __future__ import annotations

import importlib
from types import ModuleType

# Provider name -> the adapter module. Each adapter declares ``Secrets`` and ``Settings`` (Pydantic models
# the hub validates an integration's secrets and settings with, and documents) and ``WEBHOOKS`` (name ->
# path under /hooks/v1/<provider>/<integration key> to enter at the provider).
ADAPTERS = {
    "twilio": "tracking.telephony.twilio",
    "zadarma": "tracking.telephony.zadarma",
    "novofon": "tracking.telephony.zadarma",
    "mango": "tracking.telephony.mango",
    "generic": "tracking.telephony.generic",
}
PROVIDERS = tuple(ADAPTERS)


def adapter(provider: str) -> ModuleType:
    try:
        return importlib.import_module(ADAPTERS[provider])
    except KeyError:
        raise LookupError(f"unknown telephony provider {provider!r}") from None
