"""Agencies, their clients and sites, and the people who log in."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tracking.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything in the agency, including users
    MANAGER = "manager"  # every client of the agency, no user management
    VIEWER = "viewer"  # one client, read only


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    clients: Mapped[list[Client]] = relationship(back_populates="agency")
    users: Mapped[list[User]] = relationship(back_populates="agency")


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # How far back a caller's earlier call makes a new one "repeat" rather than "first-time".
    first_call_window_days: Mapped[int] = mapped_column(default=180)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set while the client is archived: hidden from the lists, its data kept, its sites showing their own
    # numbers (see tracking.accounts.set_archived).
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    agency: Mapped[Agency] = relationship(back_populates="clients")
    sites: Mapped[list[Site]] = relationship(back_populates="client", order_by="Site.id")


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Origins allowed to call the public tracking endpoints (CORS), e.g. ["example.ru", "www.example.ru"].
    domains: Mapped[list[Any]] = mapped_column(default=list)
    # Public, unguessable key embedded in the snippet tag.
    site_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The business numbers printed on the site that the snippet replaces (E.164).
    replace_numbers: Mapped[list[Any]] = mapped_column(default=list)
    # How a swapped number is written on the page; each "X" takes the next national digit.
    display_template: Mapped[str] = mapped_column(String(64), default="+7 (XXX) XXX-XX-XX")
    promo_codes_enabled: Mapped[bool] = mapped_column(default=False)
    # Attributes besides a[href^="tel:"] that hold a number the snippet rewrites, e.g. ["data-phone"].
    swap_attributes: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # Also swap the local form ("123-45-67") when the tracking number shares the business number's area code.
    swap_local_numbers: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moved on by database triggers whenever the site's setup changes (migration 0014): the snippet's hot
    # path caches the setup per process and reloads it when this differs (tracking.visit_config).
    config_version: Mapped[int] = mapped_column(default=0, server_default="0")

    client: Mapped[Client] = relationship(back_populates="sites")


class User(Base):
    __tablename__ = "users"
    # An email is unique within its agency only, so an address used elsewhere neither blocks an agency
    # nor tells it anything (docs/security.md).
    __table_args__ = (UniqueConstraint("agency_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    # Set only for viewers: the one client they may see.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # Browser sessions carry the generation they were opened in; logout moves it on, so a copied session
    # cookie stops working everywhere at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency: Mapped[Agency] = relationship(back_populates="users")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    # Only a SHA-256 of the token is kept; the token itself is shown once, at creation.
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
