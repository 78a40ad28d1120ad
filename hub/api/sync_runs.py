"""Sync runs: the job history of a client's connections (deliveries, pulls, look-ups)."""

from __future__ import annotations

from typing import Any

from hub.api import bp
from hub.api.common import NOT_FOUND, PAGE_PARAMS, id_param, page_of, paginate, refused
from hub.api.deliveries import LIMIT_PARAM
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.pipeline_queries import client_sync_runs
from hub.schemas import Out, UtcDateTime
from tracking.models import SyncRun


class SyncRunOut(Out):
    id: int
    job: str
    connector: str | None
    connection_id: int | None
    started_at: UtcDateTime
    finished_at: UtcDateTime | None
    items: int
    errors: int
    error_text: str | None


def sync_run_json(r: SyncRun) -> dict[str, Any]:
    return SyncRunOut.of(r)


@bp.get("/clients/<int:client_id>/sync-runs")
@api_auth_required
def list_sync_runs(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(client_sync_runs(client.id, limit=None), sync_run_json)


register(
    "/clients/{client_id}/sync-runs",
    "get",
    {
        "summary": "Job runs for the client's connections (deliveries, pulls, look-ups), newest first",
        "parameters": [id_param("client_id"), *PAGE_PARAMS, LIMIT_PARAM],
        "responses": {"200": page_of(SyncRunOut), "400": refused("Bad paging"), "404": NOT_FOUND},
    },
)
