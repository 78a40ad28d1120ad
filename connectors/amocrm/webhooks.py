"""amoCRM's webhooks: form-encoded, PHP-style bracket keys (``leads[status][0][status_id]=142``).

Pure parsing, no web framework: the hub's receiver hands the form here and stores what comes back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from connectors.amocrm import mapping
from connectors.base import DealUpdate

# The events that carry a lead's current state; ``delete`` carries only ids and is not a deal update.
EVENTS = ("status", "update", "add")
_KEY = re.compile(r"^leads\[(?P<event>[a-z_]+)\]\[(?P<index>\d+)\]\[(?P<field>[a-z_]+)\](?P<rest>.*)$")


class WebhookInvalid(ValueError):
    """Not an amoCRM lead webhook we can read."""


def leads(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The leads in a webhook body (as key/value pairs), top-level fields only, last event wins."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if m is None or m.group("event") not in EVENTS or m.group("rest"):
            continue  # nested values (tags, custom fields) and other entities are not needed here
        found.setdefault((m.group("event"), int(m.group("index"))), {})[m.group("field")] = value
    by_id: dict[str, dict[str, Any]] = {}
    for (_, _), lead in sorted(found.items(), key=lambda kv: (EVENTS.index(kv[0][0]), kv[0][1])):
        lead_id = str(lead.get("id") or "")
        if not lead_id.isdigit():
            raise WebhookInvalid("a lead without a numeric id")
        if "status_id" in lead and not str(lead["status_id"]).isdigit():
            raise WebhookInvalid(f"lead {lead_id}: status_id is not a number")
        by_id.setdefault(lead_id, lead)  # status events come first: they are the freshest word on status
    return list(by_id.values())


def deal_updates(pairs: Iterable[tuple[str, str]], currency: str) -> list[DealUpdate]:
    out = []
    for lead in leads(pairs):
        if "status_id" not in lead:
            continue  # an update that does not say where the deal stands changes nothing we keep
        out.append(mapping.deal_update(lead, currency))
    return out
