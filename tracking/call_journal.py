"""What an operator does with the calls journal, whether through the API or the web page: the filters that
pick calls, and the hand edits (tags and notes, a promo code, a channel by hand) with the checks on them.
Every refusal is a ``Refused`` naming the field, raised before anything changes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.orm import Session

from tracking import attribution
from tracking.errors import Refused
from tracking.models import Call, CallStatus, Channel, User
from tracking.values import id_arg, parse_bool, parse_moment

MAX_TAG = 50
MAX_NOTES = 10_000
MAX_PROMO = 32
MAX_REASON = 200


@dataclass(frozen=True)
class CallFilter:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    channel_id: int | None = None
    status: CallStatus | None = None
    first_time: bool | None = None
    attributed: bool | None = None
    caller: str = ""
    tag: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str], zone: str) -> CallFilter:
        """The filter a query string asks for; dates are days in the client's ``zone``."""
        channel = args.get("channel_id") or None
        channel_id = id_arg(channel) if channel is not None else None
        if channel is not None and channel_id is None:
            raise Refused("channel_id", "must be an integer", "bad_request")
        status = args.get("status") or None
        if status is not None and status not in {s.value for s in CallStatus}:
            raise Refused("status", "must be one of " + ", ".join(s.value for s in CallStatus), "bad_request")
        return cls(
            start=parse_moment("from", args.get("from"), zone),
            end=parse_moment("to", args.get("to"), zone, end_of_day=True),
            channel_id=channel_id,
            status=CallStatus(status) if status else None,
            first_time=parse_bool("first_time", args.get("first_time")),
            attributed=parse_bool("attributed", args.get("attributed")),
            # The last digits are what people remember and type; stored numbers are E.164.
            caller="".join(ch for ch in args.get("caller", "") if ch.isdigit())[-10:],
            tag=args.get("tag", "").strip(),
        )

    def query(self, client_id: int) -> Select[Call]:
        query = select(Call).where(Call.client_id == client_id)
        if self.start:
            query = query.where(Call.called_at >= self.start)
        if self.end:
            query = query.where(Call.called_at < self.end)
        if self.channel_id is not None:
            query = query.where(Call.channel_id == self.channel_id)
        if self.status is not None:
            query = query.where(Call.status == self.status)
        if self.first_time is not None:
            query = query.where(Call.first_time.is_(self.first_time))
        if self.attributed is not None:
            query = query.where(
                Call.channel_id.is_not(None) if self.attributed else Call.channel_id.is_(None)
            )
        if self.caller:
            query = query.where(Call.caller.like(f"%{self.caller}%"))
        if self.tag:
            needle = json.dumps(self.tag.lower())[1:-1]
            query = query.where(func.lower(cast(Call.tags, String)).like(f"%{needle}%"))
        return query


def set_tags_notes(call: Call, tags: object = None, notes: object = None) -> None:
    """An operator's tags and notes on a call (None keeps one as it is)."""
    if tags is not None:
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and 0 < len(t.strip()) <= MAX_TAG for t in tags
        ):
            raise Refused("tags", f"must be a list of non-empty strings of up to {MAX_TAG} characters")
        call.tags = list(dict.fromkeys(t.strip() for t in tags))
    if notes is not None:
        if not isinstance(notes, str) or len(notes) > MAX_NOTES:
            raise Refused("notes", f"must be a string of up to {MAX_NOTES} characters")
        call.notes = notes


def set_promo_code(db: Session, call: Call, code: object, user: User | None) -> None:
    """Tie the call to the session that showed the promo code the caller named."""
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_PROMO:
        raise Refused("code", f"must be the promo code the caller named (up to {MAX_PROMO} characters)")
    try:
        attribution.set_promo_code(db, call, code, user)
    except attribution.UnknownPromoCode as exc:
        raise Refused("code", str(exc), "unknown_promo_code") from None


def set_channel_by_hand(
    db: Session, call: Call, channel_id: object, user: User | None, reason: object = ""
) -> None:
    """The operator's answer to "how did you hear about us?": one of the client's channels, with a reason."""
    if not isinstance(channel_id, int) or isinstance(channel_id, bool):
        raise Refused("channel_id", "must be an integer")
    known = select(Channel.id).where(Channel.id == channel_id, Channel.client_id == call.client_id)
    if db.scalar(known) is None:
        raise Refused("channel_id", "must be one of this client's channels", "unknown_channel")
    if not isinstance(reason, str) or len(reason.strip()) > MAX_REASON:
        raise Refused("reason", f"must be a string of up to {MAX_REASON} characters")
    attribution.set_manual_channel(db, call, channel_id, user, reason.strip())
