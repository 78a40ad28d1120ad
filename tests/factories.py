"""Small builders for test data. Each commits, so other processes and the app see the rows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tracking.accounts import hash_password, issue_api_token
from tracking.models import Agency, Client, Role, Site, User

PASSWORD = "correct horse battery staple"


@dataclass
class Tenant:
    agency: Agency
    client: Client
    site: Site
    admin: User
    token: str


def make_tenant(db: Session, name: str = "Acme") -> Tenant:
    """An agency with one client, one site and an admin user with an API token."""
    agency = Agency(name=f"{name} Agency")
    client = Client(agency=agency, name=f"{name} Client")
    site = Site(
        client=client,
        name=f"{name} site",
        domains=[f"{name.lower()}.example"],
        site_key=secrets.token_urlsafe(12),
        replace_numbers=["+74951234567"],
    )
    admin = User(
        agency=agency,
        email=f"admin@{name.lower()}.example",
        password_hash=hash_password(PASSWORD),
        role=Role.ADMIN,
    )
    db.add_all([agency, client, site, admin])
    db.flush()
    token = issue_api_token(db, admin, "tests")
    db.commit()
    return Tenant(agency, client, site, admin, token)


def make_user(db: Session, tenant: Tenant, email: str, role: Role, client: Client | None = None) -> User:
    user = User(
        agency_id=tenant.agency.id,
        email=email,
        password_hash=hash_password(PASSWORD),
        role=role,
        client_id=client.id if client else None,
    )
    db.add(user)
    db.commit()
    return user


def csrf(client: FlaskClient) -> str:
    """The form token of the test client's browser session (set on first use)."""
    with client.session_transaction() as sess:
        sess.setdefault("csrf", "test-csrf-token")
        return sess["csrf"]


def web_login(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf(client)})
