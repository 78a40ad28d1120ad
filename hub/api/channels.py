"""Channels: where a visit came from, by ordered rules over its UTM tags, referrer and click ids."""

from __future__ import annotations

from typing import Annotated, Any

from flask import jsonify
from pydantic import AfterValidator
from sqlalchemy import select

from hub.api import bp
from hub.api.clients import Name
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.schemas import In, Out, StrictBool, StrictInt
from tracking.models import Channel

RULE_KEYS = {"utm_source", "utm_medium", "utm_campaign", "referrer_domain", "has_gclid", "has_yclid"}


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    if not rule:
        raise ValueError("must be a non-empty object of conditions")
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise ValueError("unknown condition(s): " + ", ".join(sorted(unknown)))
    for key in ("has_gclid", "has_yclid"):
        if key in rule and not isinstance(rule[key], bool):
            raise ValueError(f"{key} must be true or false")
    return rule


# All conditions of a rule must hold; a visit takes the first channel (by position) with a matching rule.
Rule = Annotated[dict[str, Any], AfterValidator(_rule)]


class ChannelOut(Out):
    id: int
    client_id: int
    name: str
    position: int
    rules: list[dict[str, Any]]
    is_default: bool
    offline: bool


class ChannelChange(In):
    name: Name | None = None
    position: StrictInt | None = None
    rules: list[Rule] | None = None
    is_default: StrictBool | None = None
    offline: StrictBool | None = None


class ChannelCreate(ChannelChange):
    name: Name


def channel_json(ch: Channel) -> dict[str, Any]:
    return ChannelOut.of(ch)


def _apply(ch: Channel, change: ChannelChange) -> None:
    for name, value in change.given().items():
        if value is None:
            continue
        if name == "is_default" and value:
            # One default per client: taking it moves it.
            for other in db().scalars(
                select(Channel).where(Channel.client_id == ch.client_id, Channel.is_default)
            ):
                other.is_default = False
        setattr(ch, name, value)


@bp.get("/clients/<int:client_id>/channels")
@api_auth_required
def list_channels(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(Channel).where(Channel.client_id == client.id).order_by(Channel.position, Channel.id)
    return paginate(query, channel_json)


@bp.post("/clients/<int:client_id>/channels")
@api_auth_required
def create_channel(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(ChannelCreate)
    ch = Channel(client_id=client.id, name=change.name)
    _apply(ch, change)
    db().add(ch)
    commit()
    return jsonify(channel_json(ch)), 201


@bp.get("/channels/<int:channel_id>")
@api_auth_required
def get_channel(channel_id: int) -> Any:
    return jsonify(channel_json(owned(Channel, channel_id)[0]))


@bp.patch("/channels/<int:channel_id>")
@api_auth_required
def update_channel(channel_id: int) -> Any:
    ch, _ = owned(Channel, channel_id, edit=True)
    _apply(ch, parse(ChannelChange))
    commit()
    return jsonify(channel_json(ch))


@bp.delete("/channels/<int:channel_id>")
@api_auth_required
def delete_channel(channel_id: int) -> Any:
    ch, _ = owned(Channel, channel_id, edit=True)
    db().delete(ch)
    commit()
    return "", 204


describe("channel", ChannelOut, ChannelCreate, ChannelChange, delete=True)
