"""Sites: where the snippet runs, which numbers it swaps, and the tag to paste."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.public import snippet_tag
from hub.resources import (
    SiteChange,
    SiteCreate,
    apply_site,
)
from hub.schemas import Out
from tracking.models import Site


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


@bp.get("/clients/<int:client_id>/sites")
@api_auth_required
def list_sites(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Site).where(Site.client_id == client.id).order_by(Site.id), site_json)


@bp.post("/clients/<int:client_id>/sites")
@api_auth_required
def create_site(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    site = resources.create_site(client, parse(SiteCreate))
    return jsonify(site_json(site)), 201


@bp.get("/sites/<int:site_id>")
@api_auth_required
def get_site(site_id: int) -> Any:
    return jsonify(site_json(owned(Site, site_id)[0]))


@bp.patch("/sites/<int:site_id>")
@api_auth_required
def update_site(site_id: int) -> Any:
    site, _ = owned(Site, site_id, edit=True)
    apply_site(site, parse(SiteChange))
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
