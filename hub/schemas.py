"""The building blocks every resource schema uses: one timestamp format, one error shape, one page shape.

A resource's schema is a Pydantic model: it validates what comes in, serialises what goes out and is the
OpenAPI document's description of both (see ``hub.api.openapi.component``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, Strict, ValidationError, WithJsonSchema

from tracking.db import iso
from tracking.errors import Refused

# Every moment goes out as UTC with a "Z", whatever zone the value carries.
UtcDateTime = Annotated[
    dt.datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
# ``true`` and ``"5"`` are refused where a JSON number is due (Python would take both as an int).
# Integers fit the database's 32-bit columns: a larger JSON number is refused here, not by the database.
StrictInt = Annotated[int, Strict(), Field(ge=-(2**31), le=2**31 - 1)]
StrictBool = Annotated[bool, Strict()]
StrictStr = Annotated[str, Strict()]


class Out(BaseModel):
    """A response body. Every field is always present (null when empty), and nothing undocumented leaves."""

    model_config = ConfigDict(
        extra="forbid", from_attributes=True, json_schema_serialization_defaults_required=True
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def of(cls, obj: Any) -> dict[str, Any]:
        """Serialise an object (a model row or a mapping) through this schema."""
        return cls.model_validate(obj).dump()

    @classmethod
    def build(cls, **values: Any) -> dict[str, Any]:
        return cls(**values).dump()


class In(BaseModel):
    """A request body. Unknown fields are ignored unless a schema forbids them; strings arrive stripped."""

    model_config = ConfigDict(str_strip_whitespace=True)

    def given(self) -> dict[str, Any]:
        """The fields the caller sent (a PATCH changes only these)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Error(Out):
    """Every refusal of the API, the tracking endpoints and the webhooks."""

    error: str = Field(description="A machine-readable code: invalid, bad_request, not_found, …")
    message: str | None
    field: str | None = Field(description="The refused field or query argument, when one is to blame")


def error_json(code: str, message: str | None, field: str | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": code, "message": text, "field": name or null}``."""
    return {"error": code, "message": message, "field": field}


T = TypeVar("T")


class Page(Out, Generic[T]):
    """Every list: ``?page=`` (from 1) and ``?per_page=`` (1 to 200, default 50), with the total count."""

    items: list[T]
    page: int
    per_page: int
    total: int


_BLAMES = re.compile(r"[a-z_][a-z0-9_]*: ")


def refusal(exc: ValidationError, prefix: str = "") -> Refused:
    """The first problem Pydantic found, named the way a person reads the body: ``rules[0].has_gclid``
    (under ``prefix`` when what was validated is a part of the body, e.g. ``settings``)."""
    err = exc.errors(include_url=False)[0]
    loc: list[str | int] = [*prefix.split(".")] if prefix else []
    loc += list(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "is not a field of this object"
    elif err["type"] == "missing":
        message = "is required"
    elif err["type"] == "value_error" and isinstance(err.get("input"), dict) and _BLAMES.match(message):
        # A rule across an object's fields names the field it blames: "pipeline_id: deals need a pipeline".
        blamed, message = message.split(": ", 1)
        loc.append(blamed)
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return Refused(path or "body", message)
