"""The per-connection choices for amoCRM, read from a form and checked before they are kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.amocrm.mapping import DEFAULT_FIELD_MAP, SESSION_FIELDS

# Our fields a connection can send to amoCRM custom fields.
MAPPABLE = (*SESSION_FIELDS, "channel")
MODES = ("unsorted", "lead")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")  # amoCRM field codes: UTM_SOURCE, PHONE …


class InvalidSettings(ValueError):
    """A setting cannot be kept; the message names it."""


def _id(form: Mapping[str, str], name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidSettings(f"{name}: must be amoCRM's numeric id")
    return int(raw)


def from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """Settings from a submitted form: ``mode``, ids, ``tags`` (comma separated), ``dedupe_open_deals``,
    and ``field.<our field>`` = an amoCRM field id or code (empty: the default, or not sent)."""
    mode = (form.get("mode") or "unsorted").strip()
    if mode not in MODES:
        raise InvalidSettings("mode: unsorted or lead")
    tags = [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]
    if len(tags) > 10 or any(len(t) > 50 for t in tags):
        raise InvalidSettings("tags: at most 10, each up to 50 characters")
    field_map: dict[str, Any] = {}
    for name in MAPPABLE:
        raw = (form.get(f"field.{name}") or "").strip()
        if not raw:
            continue
        if raw.isdigit() and len(raw) <= 12:
            field_map[name] = int(raw)
        elif _CODE.match(raw):
            field_map[name] = raw
        else:
            raise InvalidSettings(f"field.{name}: an amoCRM field id (digits) or code (like UTM_SOURCE)")
    out: dict[str, Any] = {
        "mode": mode,
        "tags": tags,
        "dedupe_open_deals": form.get("dedupe_open_deals") in ("on", "true", "1"),
        "field_map": field_map,
    }
    for name in ("pipeline_id", "status_id", "responsible_user_id"):
        out[name] = _id(form, name)
    if mode == "lead" and out["pipeline_id"] is None:
        raise InvalidSettings("pipeline_id: deals need a pipeline")
    return out


def field_choices(settings: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(our field, value in the form, default shown as a hint) for each mappable field."""
    current = settings.get("field_map") or {}
    return [(name, str(current.get(name, "")), DEFAULT_FIELD_MAP.get(name, "")) for name in MAPPABLE]
