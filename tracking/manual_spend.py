"""Spend typed in by a person for a channel without an API, checked the same way wherever it is entered."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from tracking.errors import Refused
from tracking.models import Channel, Client, ManualSpend
from tracking.values import MAX_AMOUNT, plausible_date

MAX_NOTE = 2000


def _date(data: dict[str, Any], name: str) -> dt.date:
    raw = data.get(name)
    if isinstance(raw, dt.date):
        return raw
    try:
        day = dt.date.fromisoformat(str(raw))
    except ValueError:
        raise Refused(name, "must be a date, YYYY-MM-DD") from None
    return plausible_date(name, day)


def build(db: Session, client: Client, data: dict[str, Any]) -> ManualSpend:
    """A spend row for ``client`` from entered values (strings or numbers); nothing is added here."""
    start, end = _date(data, "period_start"), _date(data, "period_end")
    if end < start:
        raise Refused("period_end", "is before period_start")
    try:
        amount = Decimal(str(data.get("amount")))
    except InvalidOperation:
        raise Refused("amount", "must be a decimal number") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise Refused("amount", f"must be from 0 to {MAX_AMOUNT}, with at most two decimals")
    currency = str(data.get("currency") or client.currency)
    if len(currency) != 3 or not currency.isalpha():
        raise Refused("currency", "must be a three-letter code")
    channel_id = data.get("channel_id")
    if channel_id is not None:
        channel = db.get(Channel, channel_id) if isinstance(channel_id, int) else None
        if channel is None or channel.client_id != client.id:
            raise Refused("channel_id", "is not a channel of this client")
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise Refused("note", f"must be a string of at most {MAX_NOTE} characters")
    return ManualSpend(
        client_id=client.id,
        channel_id=channel_id,
        period_start=start,
        period_end=end,
        amount=amount,
        currency=currency.upper(),
        note=note.strip(),
    )


def of_client(db: Session, client: Client, spend_id: int) -> ManualSpend | None:
    row = db.get(ManualSpend, spend_id)
    return row if row is not None and row.client_id == client.id else None
