"""Telephony integrations, calls, the raw events they are built from, and their attribution."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tracking.db import Base, UTCDateTime, utcnow
from tracking.models.numbers import Channel, TrackingNumber
from tracking.models.sessions import VisitSession


class TelephonyIntegration(Base):
    """One telephony account of a client that reports calls to ``/hooks/v1/<provider>/<integration_key>``."""

    __tablename__ = "telephony_integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # twilio | zadarma | novofon | mango | generic
    name: Mapped[str] = mapped_column(String(200), default="")
    # Random, unguessable; part of the webhook URL, so it identifies the integration before any signature.
    integration_key: Mapped[str] = mapped_column(String(64), unique=True)
    # JSON of the provider's secrets (auth token, API secret, API key and salt), Fernet-encrypted.
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    # Non-secret choices, e.g. {"timezone": "Europe/Moscow"} for providers that send local times.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"  # not final yet
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    FAILED = "failed"


class AttributionMethod(enum.StrEnum):
    STATIC = "static"
    DYNAMIC = "dynamic"
    DYNAMIC_UNIDENTIFIED = "dynamic_unidentified"  # a pool number nobody held at the time
    OVERFLOW = "overflow"  # the pool's fallback number
    PROMO = "promo"
    MANUAL = "manual"
    UNMATCHED = "unmatched"  # a number we do not know


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # Per integration, never across tenants: another agency's PBX may send the same call id.
        UniqueConstraint("integration_id", "provider_call_id"),
        Index("ix_calls_client_called", "client_id", "called_at"),
        Index("ix_calls_client_caller", "client_id", "caller", "called_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("telephony_integrations.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    provider_call_id: Mapped[str] = mapped_column(String(128))

    # Null for a call to a number we do not know (kept as "unmatched", never dropped).
    tracking_number_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracking_numbers.id", ondelete="SET NULL"), index=True
    )
    called_number: Mapped[str | None] = mapped_column(String(32))
    caller: Mapped[str | None] = mapped_column(String(32))  # E.164 when given; null when withheld
    called_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[int] = mapped_column(default=0)
    talk_seconds: Mapped[int] = mapped_column(default=0)
    status: Mapped[CallStatus] = mapped_column(
        Enum(CallStatus, native_enum=False, length=16), default=CallStatus.IN_PROGRESS
    )
    abandoned: Mapped[bool] = mapped_column(default=False)
    forwarded_to: Mapped[str | None] = mapped_column(String(64))
    recording_url: Mapped[str | None] = mapped_column(Text)
    # The provider's own recording id when it hands out links only through its API (Zadarma).
    recording_ref: Mapped[str | None] = mapped_column(String(255))
    first_time: Mapped[bool] = mapped_column(default=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="")

    session_id: Mapped[int | None] = mapped_column(ForeignKey("visit_sessions.id", ondelete="SET NULL"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    attribution_method: Mapped[AttributionMethod] = mapped_column(
        Enum(AttributionMethod, native_enum=False, length=24), default=AttributionMethod.UNMATCHED
    )
    # How sure we are of the session, and separately of the channel (all candidates may share one).
    session_confidence: Mapped[float | None] = mapped_column(Float)
    channel_confidence: Mapped[float | None] = mapped_column(Float)
    candidates_count: Mapped[int] = mapped_column(default=0)
    # tracking.attribution_model.MODEL_VERSION of the last automatic attribution.
    attribution_model: Mapped[str | None] = mapped_column(String(16))
    promo_code: Mapped[str | None] = mapped_column(String(16))

    finalised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tracking_number: Mapped[TrackingNumber | None] = relationship()
    session: Mapped[VisitSession | None] = relationship()
    channel: Mapped[Channel | None] = relationship()
    candidates: Mapped[list[CallCandidate]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallCandidate.score.desc()"
    )


class StoredCallEvent(Base):
    """One normalised provider event as received; a call is always recomputed from all of its events."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # start | answer | end | record
    # SHA-256 of the normalised event: a redelivered event matches and is ignored.
    fingerprint: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CallCandidate(Base):
    """A session that held the called pool number around the call time, with its score (0..1)."""

    __tablename__ = "call_candidates"
    __table_args__ = (UniqueConstraint("call_id", "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("visit_sessions.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    # The features behind the score, for the call page ("last seen 40 s before the call", ...).
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)

    call: Mapped[Call] = relationship(back_populates="candidates")
    session: Mapped[VisitSession] = relationship()


class AttributionChange(Base):
    """Every change of a call's attribution after the first: what it was, what it became, who, when."""

    __tablename__ = "attribution_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200))  # user email, or "system"
    reason: Mapped[str] = mapped_column(String(200), default="")
    old_method: Mapped[str | None] = mapped_column(String(24))
    new_method: Mapped[str] = mapped_column(String(24))
    # Plain ids, not foreign keys: the history must outlive a deleted channel or session.
    old_channel_id: Mapped[int | None] = mapped_column()
    new_channel_id: Mapped[int | None] = mapped_column()
    old_session_id: Mapped[int | None] = mapped_column()
    new_session_id: Mapped[int | None] = mapped_column()
