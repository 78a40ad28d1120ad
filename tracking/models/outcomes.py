"""Target-call rules and the history of which rules each call met."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base, UTCDateTime, utcnow


class TargetRule(Base):
    """A named rule that makes a call "target" (a lead worth counting), per client.

    A call meets a rule when every condition set on it holds; a call is target when it meets any enabled
    rule. ``working_hours`` is ``{"days": [1..7 (Monday = 1)], "start": "HH:MM", "end": "HH:MM"}`` in the
    client's time zone, or null for any time.
    """

    __tablename__ = "target_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    min_talk_seconds: Mapped[int] = mapped_column(default=30)
    # "answered" (only answered calls), "missed" (only unanswered ones) or "any".
    answered: Mapped[str] = mapped_column(String(16), default="answered")
    first_time_only: Mapped[bool] = mapped_column(default=False)
    tags_included: Mapped[list[Any]] = mapped_column(default=list)  # the call carries at least one
    tags_excluded: Mapped[list[Any]] = mapped_column(default=list)  # the call carries none
    working_hours: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TargetChange(Base):
    """Every change of the rules a call meets: before, after, and what caused the recomputation."""

    __tablename__ = "call_target_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Rule ids, not foreign keys, and their names at the time: the history outlives a deleted rule.
    old_rules: Mapped[list[Any]] = mapped_column(default=list)
    new_rules: Mapped[list[Any]] = mapped_column(default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="system")
