"""ROMI over the API: the report as JSON rows, and the same table as a flat CSV or XLSX."""

from __future__ import annotations

from typing import Any, Literal

from flask import jsonify, request
from pydantic import Field

from hub import exports
from hub.api import bp
from hub.api.common import NOT_FOUND, date_arg, id_param, ok, refused
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db, reports_db
from hub.schemas import Out
from tracking import romi
from tracking.errors import Refused
from tracking.models import Client


def report_from_args(client: Client) -> romi.Report:
    """The report the query string asks for: start, end (local days, default this month so far in the
    client's time zone), model."""
    default_start, default_end = romi.preset_period("this_month", romi.client_today(client))
    start = date_arg("start", default_start)
    end = date_arg("end", default_end)
    return romi.report(
        db(),
        client,
        start,
        end,
        model=request.args.get("model", romi.Model.LAST_NON_DIRECT),
        replica=reports_db(),
    )


def depth_from_args() -> int:
    raw = request.args.get("group_by", "channel")
    levels = [p.strip() for p in raw.split(",") if p.strip()]
    if not levels or levels != list(romi.LEVELS[: len(levels)]):
        raise Refused("group_by", "must be a prefix of channel,campaign,ad_group,keyword", "bad_request")
    return len(levels)


Money = str | None
Ratio = float | None


class RomiRow(Out):
    level: Literal["total", "channel", "campaign", "ad_group", "keyword"]
    path: list[str]
    label: str
    dimensions: dict[str, str | None] = Field(description="The row's label at each level above and at it")
    spend: Money
    clicks: int
    impressions: int
    visits: int
    calls: int
    unique_callers: int
    first_time_calls: int
    answered: int
    missed: int
    deals: int
    won: int
    revenue: Money
    cost_per_call: Money
    cost_per_deal: Money
    visit_to_call: Ratio
    call_to_deal: Ratio
    deal_to_won: Ratio
    romi: Ratio


class RomiReport(Out):
    start: str
    end: str
    model: romi.Model
    currency: str
    rows: list[RomiRow] = Field(description="Parents before children")
    totals: RomiRow


def row_json(node: romi.Node, labels: list[str] | None = None) -> dict[str, Any]:
    labels = labels or []
    return {
        "level": romi.LEVELS[node.level - 1] if node.level else "total",
        "path": list(node.path),
        "label": node.label,
        "dimensions": dict(zip(romi.LEVELS, labels + [None] * (len(romi.LEVELS) - len(labels)), strict=True)),
        **node.metrics.as_dict(),
    }


@bp.get("/clients/<int:client_id>/romi")
@api_auth_required
def get_romi(client_id: int) -> Any:
    client = client_or_404(client_id)
    depth = depth_from_args()
    rep = report_from_args(client)
    return jsonify(
        RomiReport.build(
            start=rep.start.isoformat(),
            end=rep.end.isoformat(),
            model=rep.model,
            currency=rep.currency,
            rows=[row_json(node, labels) for node, labels in romi.with_labels(rep.rows(depth))],
            totals=row_json(rep.total),
        )
    )


def download(client: Client, rep: romi.Report, fmt: str) -> Any:
    """The report as a flat CSV or XLSX file named for the client and the period."""
    name = f"romi-{client.id}-{rep.start.isoformat()}-{rep.end.isoformat()}"
    return exports.download(name, fmt, romi.FLAT_COLUMNS, romi.flat_rows(rep), "ROMI")


@bp.get("/clients/<int:client_id>/romi.csv", defaults={"fmt": "csv"})
@bp.get("/clients/<int:client_id>/romi.xlsx", defaults={"fmt": "xlsx"})
@api_auth_required
def export_romi(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    return download(client, report_from_args(client), fmt)


_PARAMS = [
    id_param("client_id"),
    {"name": "start", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "end", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "model", "in": "query", "schema": {"type": "string", "enum": [m.value for m in romi.Model]}},
]
register(
    "/clients/{client_id}/romi",
    "get",
    {
        "summary": "ROMI per channel, campaign, ad group and keyword for a period in the client's time zone",
        "parameters": [
            *_PARAMS,
            {
                "name": "group_by",
                "in": "query",
                "description": "A prefix of channel,campaign,ad_group,keyword (default channel)",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": ok(RomiReport, "Rows (parents before children) and totals"),
            "400": refused("Bad period, model or group_by"),
            "404": NOT_FOUND,
        },
    },
)
for _fmt, _type in (("csv", "text/csv"), ("xlsx", exports.XLSX)):
    register(
        f"/clients/{{client_id}}/romi.{_fmt}",
        "get",
        {
            "summary": f"The ROMI table as a flat {_fmt.upper()}: one row per keyword-level leaf",
            "parameters": _PARAMS,
            "responses": {
                "200": {"description": _fmt.upper(), "content": {_type: {}}},
                "400": refused("Bad period or model"),
                "404": NOT_FOUND,
            },
        },
    )
