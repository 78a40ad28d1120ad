"""amoCRM (and Kommo): finalised calls become incoming SIP leads or deals, and deals come back with status
and revenue, by periodic pull and by webhook.

Account ids: ``host``, ``subdomain``. Settings: ``mode`` ("unsorted" or "lead"), ``pipeline_id``,
``status_id``, ``responsible_user_id``, ``field_map`` (our field -> custom field id or code), ``tags``,
``dedupe_open_deals`` (default true), ``source_name``, ``service_code``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.amocrm.connector import AmoConnector
from connectors.amocrm.provider import PROVIDER
from connectors.base import AccountContext

CAPABILITIES = frozenset({"push_calls", "deals"})


def make_connector(ctx: AccountContext) -> AmoConnector:
    return AmoConnector(ctx)


class Settings(BaseModel):
    """Per-connection choices, edited on the connections page or through the API."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["unsorted", "lead"] = Field(
        "unsorted", description="Incoming (unsorted) SIP leads, or deals"
    )
    pipeline_id: int | None = Field(None, description="Pipeline of new deals (required for mode lead)")
    status_id: int | None = None
    responsible_user_id: int | None = None
    field_map: dict[str, int | str] = Field(
        default_factory=dict, description="Our field -> amoCRM custom field id or code"
    )
    tags: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=10)
    dedupe_open_deals: bool = True
    source_name: str | None = Field(None, max_length=255)
    service_code: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _lead_needs_pipeline(self) -> Settings:
        if self.mode == "lead" and self.pipeline_id is None:
            raise ValueError("pipeline_id: deals need a pipeline")
        return self


__all__ = ["CAPABILITIES", "PROVIDER", "Settings", "AmoConnector", "make_connector"]
