"""ROMI over the API: the report as JSON rows, and the same table as a flat CSV or XLSX."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, request
from werkzeug.exceptions import BadRequest

from hub import exports
from hub.api import bp
from hub.api.common import plausible_date
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from tracking import romi
from tracking.models import Client


def _date(name: str, default: dt.date) -> dt.date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date, YYYY-MM-DD") from None
    return plausible_date(day, name)


def report_from_args(client: Client) -> romi.Report:
    """The report the query string asks for: start, end (local days, default this month so far), model."""
    today = dt.datetime.now(dt.UTC).date()
    start = _date("start", today.replace(day=1))
    end = _date("end", today)
    try:
        return romi.report(
            db(), client, start, end, model=request.args.get("model", romi.Model.LAST_NON_DIRECT)
        )
    except romi.InvalidReport as exc:
        raise BadRequest(str(exc)) from None


def depth_from_args() -> int:
    raw = request.args.get("group_by", "channel")
    levels = [p.strip() for p in raw.split(",") if p.strip()]
    if not levels or levels != list(romi.LEVELS[: len(levels)]):
        raise BadRequest("group_by must be a prefix of channel,campaign,ad_group,keyword")
    return len(levels)


def row_json(node: romi.Node) -> dict[str, Any]:
    dims = {name: None for name in romi.LEVELS}
    return {
        "level": romi.LEVELS[node.level - 1] if node.level else "total",
        "path": list(node.path),
        "label": node.label,
        "dimensions": dims,
        **node.metrics.as_dict(),
    }


@bp.get("/clients/<int:client_id>/romi")
@api_auth_required
def get_romi(client_id: int) -> Any:
    client = client_or_404(client_id)
    depth = depth_from_args()
    rep = report_from_args(client)
    rows = []
    for node, labels in romi.with_labels(rep.rows(depth)):
        row = row_json(node)
        row["dimensions"] = dict(zip(romi.LEVELS, labels + [None] * (4 - len(labels)), strict=True))
        rows.append(row)
    return jsonify(
        start=rep.start.isoformat(),
        end=rep.end.isoformat(),
        model=rep.model.value,
        currency=rep.currency,
        rows=rows,
        totals=row_json(rep.total),
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
    {"name": "client_id", "in": "path", "required": True, "schema": {"type": "integer"}},
    {"name": "start", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "end", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "model", "in": "query", "schema": {"type": "string", "enum": [m.value for m in romi.Model]}},
]
_METRICS = {
    name: {"type": ["string", "null"]}
    if name in ("spend", "revenue", "cost_per_call", "cost_per_deal")
    else {"type": ["number", "null"]}
    for name in romi.METRIC_NAMES
}
ROMI_ROW = schema(
    "RomiRow",
    {
        "type": "object",
        "properties": {
            "level": {"type": "string", "enum": ["total", *romi.LEVELS]},
            "path": {"type": "array", "items": {"type": "string"}},
            "label": {"type": "string"},
            "dimensions": {"type": "object"},
            **_METRICS,
        },
    },
)
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
            "200": {
                "description": "Rows (parents before children) and totals",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "rows": {"type": "array", "items": ROMI_ROW},
                                "totals": ROMI_ROW,
                            },
                        }
                    }
                },
            },
            "400": {"description": "Bad period, model or group_by"},
            "404": {"$ref": "#/components/responses/NotFound"},
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
                "400": {"description": "Bad period or model"},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        },
    )
