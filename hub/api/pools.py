"""Pools: numbers handed to visitors one session at a time, with their hold times and members."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from pydantic import Field
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.overview import pool_usage
from hub.resources import PoolChange, PoolCreate, apply_pool, set_pool_members
from hub.schemas import Out
from tracking.db import utcnow
from tracking.models import Pool


class PoolOut(Out):
    id: int
    client_id: int
    site_id: int
    name: str
    hold_seconds: int
    grace_seconds: int
    max_hold_seconds: int
    fallback_number_id: int | None
    channel_ids: list[int]
    number_ids: list[int]
    active: bool
    channel_coherent: bool = Field(
        description="Keep numbers within the channel of their last holder and, within it, with their campaign"
    )
    utilisation: float


def pool_json(pool: Pool) -> dict[str, Any]:
    return PoolOut.build(
        id=pool.id,
        client_id=pool.client_id,
        site_id=pool.site_id,
        name=pool.name,
        hold_seconds=pool.hold_seconds,
        grace_seconds=pool.grace_seconds,
        max_hold_seconds=pool.max_hold_seconds,
        fallback_number_id=pool.fallback_number_id,
        channel_ids=sorted(pc.channel_id for pc in pool.served_channels),
        number_ids=[n.id for n in pool.numbers],
        active=pool.active,
        channel_coherent=pool.channel_coherent,
        utilisation=round(pool_usage(db(), pool, utcnow()).utilisation, 4),
    )


@bp.get("/clients/<int:client_id>/pools")
@api_auth_required
def list_pools(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id), pool_json)


@bp.post("/clients/<int:client_id>/pools")
@api_auth_required
def create_pool(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    pool = resources.create_pool(client, parse(PoolCreate))
    return jsonify(pool_json(pool)), 201


@bp.get("/pools/<int:pool_id>")
@api_auth_required
def get_pool(pool_id: int) -> Any:
    return jsonify(pool_json(owned(Pool, pool_id)[0]))


@bp.patch("/pools/<int:pool_id>")
@api_auth_required
def update_pool(pool_id: int) -> Any:
    pool, _ = owned(Pool, pool_id, edit=True)
    change = parse(PoolChange)
    apply_pool(pool, change)
    set_pool_members(pool, change)
    commit()
    return jsonify(pool_json(pool))


describe("pool", PoolOut, PoolCreate, PoolChange, delete=False)
