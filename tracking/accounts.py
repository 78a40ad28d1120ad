"""Passwords, API tokens and the tenancy rule of who may see which client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tracking.db import utcnow
from tracking.models import ApiToken, Client, Role, User

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN_PREFIX = "otk_"  # noqa: S105  (a public marker, not a secret)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password_hash: str, password: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = password_hash.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def authenticate(db: Session, email: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Spend the same time as a real check so response timing does not reveal which emails exist.
        check_password(hash_password("x"), password)
        return None
    return user if check_password(user.password_hash, password) else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(db: Session, user: User, name: str = "") -> str:
    """Create an API token for ``user`` and return it; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), prefix=token[:12]))
    db.flush()
    return token


def user_for_token(db: Session, token: str) -> User | None:
    row = db.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    row.last_used_at = utcnow()
    return row.user


def visible_clients(user: User) -> Select[tuple[Client]]:
    """Clients ``user`` may see: the whole agency, or the viewer's one client."""
    query = select(Client).where(Client.agency_id == user.agency_id)
    if user.role == Role.VIEWER:
        query = query.where(Client.id == user.client_id)
    return query.order_by(Client.name, Client.id)


def can_see_client(user: User, client: Client | None) -> bool:
    if client is None or client.agency_id != user.agency_id:
        return False
    return user.role != Role.VIEWER or user.client_id == client.id


def can_edit(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.MANAGER)
