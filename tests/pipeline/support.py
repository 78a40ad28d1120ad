"""Helpers for pipeline tests: the fakes bundle, connections holding real fake-issued tokens, payloads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import Tenant
from tests.fakes.destination import FakeDestination
from tests.fakes.oauth import GENERIC, FakeOAuth
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, ConnectionStatus

BOX = SecretBox(TEST_ENCRYPTION_KEY)


@dataclass
class Fakes:
    oauth: FakeOAuth
    dest: FakeDestination

    def config(self) -> dict[str, Any]:
        return {
            "OTKUDA_FAKE_CLIENT_ID": GENERIC.client_id,
            "OTKUDA_FAKE_CLIENT_SECRET": GENERIC.client_secret,
            "OTKUDA_FAKE_AUTHORIZE_URL": self.oauth.url + "/authorize",
            "OTKUDA_FAKE_TOKEN_URL": self.oauth.url + "/token",
            "OTKUDA_FAKE_API_BASE": self.dest.url,
        }


def make_connection(
    db: Session,
    tenant: Tenant,
    fakes: Fakes,
    *,
    connectors: tuple[str, ...] = ("fakedest",),
    expires_in: dt.timedelta = dt.timedelta(hours=1),
    shared: bool = False,
    settings: dict[str, Any] | None = None,
) -> Connection:
    """A connection holding a real token pair issued by the fake OAuth server."""
    pair = fakes.oauth.issue_pair()
    conn = Connection(
        agency_id=tenant.agency.id,
        client_id=None if shared else tenant.client.id,
        provider="fakeoauth",
        name="Fake CRM",
        connectors=list(connectors),
        account={"subdomain": "acme"},
        settings=settings or {},
        scopes=["read", "write"],
        access_token_enc=BOX.seal(pair["access_token"]),
        refresh_token_enc=BOX.seal(pair["refresh_token"]),
        expires_at=utcnow() + expires_in,
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()
    return conn


def call_payload(call_id: int, client_id: int, caller: str = "+79990000001") -> dict[str, Any]:
    return {
        "call_id": call_id,
        "client_id": client_id,
        "key": f"otkuda-call-{call_id}",
        "caller": caller,
        "tracking_number": "+74950000000",
        "static": False,
        "called_at": "2026-11-22T10:00:00+00:00",
        "status": "answered",
        "session": {"utm_source": "yandex", "utm_campaign": "brand"},
    }
