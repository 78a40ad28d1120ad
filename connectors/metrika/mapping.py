"""Our call and deal payloads as Metrika CSV rows, and our delivery keys inside an upload's comment."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os.path
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

CALL_COLUMNS = (
    "DateTime",
    "PhoneNumber",
    "TalkDuration",
    "HoldDuration",
    "CallMissed",
    "Tag",
    "FirstTimeCaller",
    "URL",
    "CallTrackerURL",
    "StaticCall",
)
DEAL_COLUMNS = ("Target", "DateTime", "Price", "Currency")
# client_id_type query value -> the identifier column a file of that type carries.
ID_COLUMNS = {"CLIENT_ID": "ClientId", "YCLID": "Yclid"}

COMMENT_MARK = "otkuda:"
COMMENT_LIMIT = 255  # Metrika's limit on an upload's comment
WINDOW_DAYS = 21  # a visit can be supplemented with a call or conversion for this long

_DIGITS = re.compile(r"^\d{1,40}$")


class NotSendable(ValueError):
    """The item cannot be represented in Metrika; ``skip`` separates a choice from a defect."""

    def __init__(self, reason: str, *, skip: bool):
        super().__init__(reason)
        self.skip = skip


@dataclass(frozen=True)
class Row:
    id_type: str  # CLIENT_ID or YCLID
    identifier: str
    values: dict[str, str]


def parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}")
    return moment.astimezone(dt.UTC)


def visitor_id(session: Mapping[str, Any] | None) -> tuple[str, str]:
    """The Metrika identifier for a session: the snippet's ``_ym_uid`` (ClientId), else the yclid."""
    session = session or {}
    client_id = str(session.get("ym_client_id") or "").strip()
    if _DIGITS.match(client_id):
        return "CLIENT_ID", client_id
    yclid = str(session.get("yclid") or "").strip()
    if _DIGITS.match(yclid):
        return "YCLID", yclid
    raise NotSendable("no Metrika visitor id (ClientId or yclid) on the session", skip=True)


def check_window(moment: dt.datetime, now: dt.datetime, days: int, what: str) -> None:
    if now - moment > dt.timedelta(days=days):
        raise NotSendable(
            f"{what} at {moment.isoformat()} is older than Metrika's {days}-day window", skip=True
        )


def _flag(value: bool) -> str:
    return "1" if value else "0"


def call_row(
    payload: Mapping[str, Any],
    *,
    hub_base_url: str,
    now: dt.datetime,
    window_days: int = WINDOW_DAYS,
    phone_column: str = "tracking",
) -> Row:
    """A CallPayload as one upload_calls row, or NotSendable."""
    called_at = parse_time(payload["called_at"])
    check_window(called_at, now, window_days, "call")
    id_type, identifier = visitor_id(payload.get("session"))
    session = payload.get("session") or {}
    # Metrika's calls report groups by the number shown on the page, which is the tracking number;
    # the caller's own number is sent only when the connection asks for it (it is personal data).
    phone = payload.get("caller") if phone_column == "caller" else payload.get("tracking_number")
    values = {
        "DateTime": str(int(called_at.timestamp())),
        "PhoneNumber": (phone or "").replace(" ", ""),
        "TalkDuration": str(int(payload.get("talk_seconds") or 0)),
        "HoldDuration": str(int(payload.get("wait_seconds") or 0)),
        "CallMissed": _flag(payload.get("status") != "answered"),
        "Tag": payload.get("channel") or "",
        "FirstTimeCaller": _flag(bool(payload.get("first_time"))),
        "URL": session.get("landing_url") or "",
        "CallTrackerURL": hub_base_url.rstrip("/") + payload["call_path"] if payload.get("call_path") else "",
        "StaticCall": _flag(bool(payload.get("static"))),
    }
    return Row(id_type, identifier, values)


def deal_row(
    payload: Mapping[str, Any],
    *,
    goal: str,
    now: dt.datetime,
    window_days: int = WINDOW_DAYS,
) -> Row:
    """A DealPayload as one offline-conversion row for ``goal``, or NotSendable."""
    call = payload.get("call")
    if not call:
        raise NotSendable("deal has no call, so no Metrika visitor to credit", skip=True)
    # Metrika links a conversion only to a visit inside its window, and the call is our visit.
    check_window(parse_time(call["called_at"]), now, window_days, "the deal's call")
    id_type, identifier = visitor_id(call.get("session"))
    won_at = parse_time(payload["won_at"])
    currency = str(payload.get("currency") or "").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise NotSendable(f"currency {currency!r} is not an ISO 4217 code", skip=False)
    values = {
        "Target": goal,
        "DateTime": str(int(won_at.timestamp())),
        "Price": str(payload["amount"]),
        "Currency": currency,
    }
    return Row(id_type, identifier, values)


def to_csv(id_type: str, columns: Sequence[str], rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ID_COLUMNS[id_type], *columns])
    for row in rows:
        writer.writerow([row.identifier, *(row.values[c] for c in columns)])
    return out.getvalue()


# --- Our keys inside an upload's comment ---------------------------------------------------------------
# Metrika keeps no id of ours per row, but it keeps a 255-character comment per upload and lists uploads
# with their comments: the keys of a file are written there (common prefix once), so a re-send after a
# crash can look for them instead of uploading a duplicate file.


def _q(value: str) -> str:
    return quote(value, safe="-_.")


def encode_keys(keys: Sequence[str]) -> str:
    prefix = os.path.commonprefix(list(keys)) if keys else ""
    return COMMENT_MARK + _q(prefix) + "*" + ",".join(_q(k[len(prefix) :]) for k in keys)


def decode_keys(comment: str | None) -> list[str]:
    if not comment or not comment.startswith(COMMENT_MARK) or "*" not in comment:
        return []
    prefix, _, rest = comment[len(COMMENT_MARK) :].partition("*")
    return [unquote(prefix) + unquote(part) for part in rest.split(",")]


def chunk_for_comments(keys: Sequence[str], max_rows: int) -> list[list[int]]:
    """Split positions of ``keys`` into runs whose encoded keys fit one comment."""
    chunks: list[list[int]] = []
    current: list[int] = []
    for pos in range(len(keys)):
        trial = current + [pos]
        if current and (len(trial) > max_rows or len(encode_keys([keys[i] for i in trial])) > COMMENT_LIMIT):
            chunks.append(current)
            trial = [pos]
        current = trial
    if current:
        chunks.append(current)
    return chunks
