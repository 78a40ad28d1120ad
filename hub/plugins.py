"""What plugins declare about themselves, read generically: a connector's ``Settings`` (in its package's
``__init__``) and a telephony adapter's ``Secrets``, ``Settings`` and ``WEBHOOKS``. The API validates and
documents through these, and the pages build their forms from them; nothing here names a provider."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from connectors import registry
from hub.schemas import refusal
from tracking.errors import Refused


def connector_settings(name: str) -> type[BaseModel] | None:
    """The settings model a connector declares; None for one that declares none (or is not installed)."""
    try:
        return getattr(registry.load(name), "Settings", None)
    except (ImportError, LookupError):
        return None


def validate_connection_settings(connectors: list[str], settings: Any) -> dict[str, Any]:
    """A connection's ``settings`` checked against what each of its connectors declares.

    One connection can serve several connectors (a Yandex account: Metrika and Direct), so each connector
    validates the keys it declares and a key no connector declares is refused. Values are kept as given
    (after the models' coercion), defaults are not written in."""
    if not isinstance(settings, dict):
        raise Refused("settings", "must be an object")
    models = [connector_settings(name) for name in connectors]
    if any(m is None for m in models):
        return dict(settings)  # a connector that declares nothing takes any settings
    out: dict[str, Any] = {}
    for model in models:
        assert model is not None
        mine = {k: v for k, v in settings.items() if k in model.model_fields}
        try:
            checked = model.model_validate(mine)
        except ValidationError as exc:
            raise refusal(exc, "settings") from None
        out.update(checked.model_dump(mode="json", include=set(mine)))
    unknown = sorted(set(settings) - set(out))
    if unknown:
        raise Refused(f"settings.{unknown[0]}", f"no connector of this connection takes {unknown[0]}")
    return out
