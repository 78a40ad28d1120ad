"""Sites: where the snippet runs, which numbers it swaps, and the tag to paste."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from flask import current_app, jsonify
from pydantic import AfterValidator, Field
from sqlalchemy import select

from hub.api import bp
from hub.api.clients import Name
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.public import snippet_tag
from hub.schemas import In, Out, StrictBool
from tracking import phones
from tracking.hosts import canonical_domain_entry
from tracking.models import Site


def _e164(raw: str) -> str:
    try:
        return phones.normalize(raw)
    except phones.InvalidPhoneNumber as exc:
        raise ValueError(str(exc)) from None


def _host(raw: str) -> str:
    # One canonical form (IDNA, lower case, no scheme/port/path), so the Origin check compares like with like.
    canonical = canonical_domain_entry(raw)
    if not canonical:
        raise ValueError("must be a host name (e.g. example.ru, *.example.ru, окна.рф)")
    return canonical


def _template(raw: str) -> str:
    if "X" not in raw:
        raise ValueError("must contain X for each digit, e.g. +7 (XXX) XXX-XX-XX")
    return raw


# Event handlers and URLs other than tel: are never the snippet's to rewrite.
SWAP_ATTRIBUTE = re.compile(r"(?!on)[a-z][a-z0-9_.:-]{0,63}", re.IGNORECASE)


def _swap_attribute(raw: str) -> str:
    if not SWAP_ATTRIBUTE.fullmatch(raw) or raw.lower() in ("href", "src", "style"):
        raise ValueError("must be an attribute name such as data-phone (not on*, href, src or style)")
    return raw.lower()


SwapAttribute = Annotated[str, Field(strict=True), AfterValidator(_swap_attribute)]
E164 = Annotated[str, Field(strict=True), AfterValidator(_e164)]
Host = Annotated[str, Field(strict=True), AfterValidator(_host)]


class SiteOut(Out):
    id: int
    client_id: int
    name: str
    domains: list[str]
    site_key: str
    replace_numbers: list[str]
    display_template: str
    promo_codes_enabled: bool
    swap_attributes: list[str]
    swap_local_numbers: bool
    snippet_tag: str


class SiteChange(In):
    name: Name | None = None
    domains: list[Host] | None = None
    replace_numbers: list[E164] | None = None
    display_template: Annotated[str, Field(strict=True), AfterValidator(_template)] | None = None
    promo_codes_enabled: StrictBool | None = None
    swap_attributes: (
        Annotated[
            list[Annotated[str, Field(strict=True), AfterValidator(_swap_attribute)]], Field(max_length=20)
        ]
        | None
    ) = None
    swap_local_numbers: StrictBool | None = None


class SiteCreate(SiteChange):
    name: Name


def site_json(site: Site) -> dict[str, Any]:
    base = current_app.config["BASE_URL"]
    return SiteOut.build(
        id=site.id,
        client_id=site.client_id,
        name=site.name,
        domains=site.domains,
        site_key=site.site_key,
        replace_numbers=site.replace_numbers,
        display_template=site.display_template,
        promo_codes_enabled=site.promo_codes_enabled,
        swap_attributes=site.swap_attributes,
        swap_local_numbers=site.swap_local_numbers,
        snippet_tag=snippet_tag(base, site.site_key),
    )


def _apply(site: Site, change: SiteChange) -> None:
    for name, value in change.given().items():
        if value is not None:
            setattr(site, name, value)
    if change.domains is not None:
        site.domains = list(dict.fromkeys(change.domains))  # "окна.рф" and its punycode are one domain


@bp.get("/clients/<int:client_id>/sites")
@api_auth_required
def list_sites(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Site).where(Site.client_id == client.id).order_by(Site.id), site_json)


@bp.post("/clients/<int:client_id>/sites")
@api_auth_required
def create_site(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(SiteCreate)
    site = Site(client_id=client.id, name=change.name, site_key=secrets.token_urlsafe(12))
    _apply(site, change)
    db().add(site)
    commit()
    return jsonify(site_json(site)), 201


@bp.get("/sites/<int:site_id>")
@api_auth_required
def get_site(site_id: int) -> Any:
    return jsonify(site_json(owned(Site, site_id)[0]))


@bp.patch("/sites/<int:site_id>")
@api_auth_required
def update_site(site_id: int) -> Any:
    site, _ = owned(Site, site_id, edit=True)
    _apply(site, parse(SiteChange))
    commit()
    return jsonify(site_json(site))


@bp.delete("/sites/<int:site_id>")
@api_auth_required
def delete_site(site_id: int) -> Any:
    site, _ = owned(Site, site_id, edit=True)
    db().delete(site)
    commit()
    return "", 204


describe("site", SiteOut, SiteCreate, SiteChange, delete=True)
