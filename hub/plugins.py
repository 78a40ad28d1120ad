"""What plugins declare about themselves, read generically: a connector's ``Settings`` (in its package's
``__init__``) and a telephony adapter's ``Secrets``, ``Settings`` and ``WEBHOOKS``. The API validates and
documents through these, and the pages build their forms from them; nothing here names a provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from connectors import registry


def connector_settings(name: str) -> type[BaseModel] | None:
    """The settings model a connector declares; None for one that declares none (or is not installed)."""
    try:
        return getattr(registry.load(name), "Settings", None)
    except (ImportError, LookupError):
        return None


@dataclass(frozen=True)
class FormField:
    """One input of a settings form, read from a declared field."""

    name: str
    kind: str  # checkbox | select | number | text | list
    description: str
    choices: tuple[str, ...] = ()
    placeholder: str = ""


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]] | None:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _kind(args[0])
    if annotation is bool:
        return "checkbox", ()
    if get_origin(annotation) is Literal:
        return "select", tuple(str(a) for a in get_args(annotation))
    if annotation in (int, float):
        return "number", ()
    if annotation is str:
        return "text", ()
    if get_origin(annotation) is list and get_args(annotation) in ((str,),):
        return "list", ()
    return None  # an object (a field map) has no generic input; its connector's own form sets it


def form_fields(model: type[BaseModel]) -> list[FormField]:
    """The inputs a page shows for a declared settings model, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        kind = _kind(info.annotation)
        if kind is None:
            continue
        default = "" if info.default in (None, PydanticUndefined) else str(info.default)
        out.append(FormField(name, kind[0], info.description or "", kind[1], default))
    return out


def from_form(model: type[BaseModel], form: Mapping[str, str]) -> dict[str, Any]:
    """Settings as a submitted form gives them: an empty input is "not set", a checkbox is on or off,
    a list is comma separated. The model checks the values afterwards."""
    out: dict[str, Any] = {}
    for f in form_fields(model):
        raw = (form.get(f.name) or "").strip()
        if f.kind == "checkbox":
            out[f.name] = form.get(f.name) in ("on", "true", "1")
        elif f.kind == "list":
            out[f.name] = [part.strip() for part in raw.split(",") if part.strip()]
        elif raw:
            out[f.name] = raw
    return out
