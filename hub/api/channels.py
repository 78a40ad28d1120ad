"""Channels: where a visit came from, by ordered rules over its UTM tags, referrer and click ids."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.resources import ChannelChange, ChannelCreate, apply_channel
from hub.schemas import Out
from tracking.models import Channel


class ChannelOut(Out):
    id: int
    client_id: int
    name: str
    position: int
    rules: list[dict[str, Any]]
    is_default: bool
    offline: bool


def channel_json(ch: Channel) -> dict[str, Any]:
    return ChannelOut.of(ch)


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
    ch = resources.create_channel(client, parse(ChannelCreate))
    return jsonify(channel_json(ch)), 201


@bp.get("/channels/<int:channel_id>")
@api_auth_required
def get_channel(channel_id: int) -> Any:
    return jsonify(channel_json(owned(Channel, channel_id)[0]))


@bp.patch("/channels/<int:channel_id>")
@api_auth_required
def update_channel(channel_id: int) -> Any:
    ch, _ = owned(Channel, channel_id, edit=True)
    apply_channel(ch, parse(ChannelChange))
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
