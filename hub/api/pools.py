"""Pools: numbers handed to visitors one session at a time, with their hold times and members."""

from __future__ import annotations

from typing import Annotated, Any

from flask import jsonify
from pydantic import Field
from sqlalchemy import delete, select

from hub.api import bp
from hub.api.clients import Name
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.api.numbers import same_client
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.overview import pool_usage
from hub.schemas import In, Out, StrictBool, StrictInt
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.models import Channel, Pool, PoolChannel, Site, TrackingNumber


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
    channel_coherent: bool = Field(description="Keep numbers within the channel of their last holder")
    utilisation: float


class PoolChange(In):
    name: Name | None = None
    site_id: StrictInt | None = None
    # A hold is minutes to hours; a day is the most any visitor keeps a number.
    hold_seconds: Annotated[int, Field(strict=True, ge=30, le=86_400)] | None = None
    grace_seconds: Annotated[int, Field(strict=True, ge=0, le=86_400)] | None = None
    max_hold_seconds: Annotated[int, Field(strict=True, ge=60, le=86_400)] | None = None
    active: StrictBool | None = None
    channel_coherent: StrictBool | None = Field(
        None, description="Keep numbers within the channel of their last holder (default true)"
    )
    fallback_number_id: StrictInt | None = None
    channel_ids: list[StrictInt] | None = Field(None, description="Replaces the channels the pool serves")
    number_ids: list[StrictInt] | None = Field(None, description="Replaces the pool's member numbers")


class PoolCreate(PoolChange):
    name: Name
    site_id: StrictInt


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


def _apply(pool: Pool, change: PoolChange) -> None:
    given = change.given()
    for name in (
        "name",
        "site_id",
        "hold_seconds",
        "grace_seconds",
        "max_hold_seconds",
        "active",
        "channel_coherent",
    ):
        if given.get(name) is not None:
            setattr(pool, name, given[name])
    if "site_id" in given:
        same_client(Site, pool.site_id, pool.client_id, "site_id")
    if (
        pool.max_hold_seconds is not None
        and pool.hold_seconds is not None
        and pool.max_hold_seconds < pool.hold_seconds
    ):
        raise Refused("max_hold_seconds", "must not be shorter than hold_seconds")
    if "fallback_number_id" in given:
        pool.fallback_number_id = given["fallback_number_id"]
        same_client(TrackingNumber, pool.fallback_number_id, pool.client_id, "fallback_number_id")


def _set_members(pool: Pool, change: PoolChange) -> None:
    """``channel_ids`` and ``number_ids`` replace the pool's served channels and member numbers."""
    if change.channel_ids is not None:
        for i, cid in enumerate(change.channel_ids):
            same_client(Channel, cid, pool.client_id, f"channel_ids[{i}]")
        db().execute(delete(PoolChannel).where(PoolChannel.pool_id == pool.id))
        db().add_all(
            PoolChannel(pool_id=pool.id, channel_id=cid) for cid in dict.fromkeys(change.channel_ids)
        )
    if change.number_ids is not None:
        wanted = set()
        for i, nid in enumerate(change.number_ids):
            same_client(TrackingNumber, nid, pool.client_id, f"number_ids[{i}]")
            wanted.add(nid)
        if pool.fallback_number_id in wanted:
            raise Refused("number_ids", "the fallback number cannot also be a pool member")
        for n in db().scalars(select(TrackingNumber).where(TrackingNumber.client_id == pool.client_id)):
            if n.id in wanted:
                if n.channel_id is not None:
                    raise Refused("number_ids", f"{n.e164} is a static number of a channel")
                n.pool_id = pool.id
            elif n.pool_id == pool.id:
                n.pool_id = None
    db().flush()
    db().expire(pool)


@bp.get("/clients/<int:client_id>/pools")
@api_auth_required
def list_pools(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id), pool_json)


@bp.post("/clients/<int:client_id>/pools")
@api_auth_required
def create_pool(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(PoolCreate)
    pool = Pool(client_id=client.id, name=change.name)
    pool.hold_seconds, pool.grace_seconds, pool.max_hold_seconds = 900, 300, 4 * 3600
    _apply(pool, change)
    db().add(pool)
    db().flush()
    _set_members(pool, change)
    commit()
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
    _apply(pool, change)
    _set_members(pool, change)
    commit()
    return jsonify(pool_json(pool))


describe("pool", PoolOut, PoolCreate, PoolChange, delete=False)
