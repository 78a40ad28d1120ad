"""Passwords, API tokens and the tenancy rule of who may see which client."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tracking.db import utcnow
from tracking.models import Agency, ApiToken, Client, Role, TrackingNumber, User

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
    """The user with this email whose password matches; emails are unique per agency, so one address
    may have accounts in several agencies and the password says which (the oldest account wins a tie)."""
    users = db.scalars(select(User).where(User.email == email.strip().lower()).order_by(User.id)).all()
    if not users:
        # Spend the same time as a real check so response timing does not reveal which emails exist.
        check_password(hash_password("x"), password)
        return None
    for user in users:
        if check_password(user.password_hash, password):
            return user
    return None


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


def visible_clients(user: User, *, archived: bool = True) -> Select[Client]:
    """Clients ``user`` may see: the whole agency, or the viewer's one client; without the archived ones
    unless ``archived``."""
    query = select(Client).where(Client.agency_id == user.agency_id)
    if not archived:
        query = query.where(Client.archived_at.is_(None))
    if user.role == Role.VIEWER:
        query = query.where(Client.id == user.client_id)
    return query.order_by(Client.name, Client.id)


def set_archived(client: Client, archived: bool, now: dt.datetime) -> None:
    """Archive or unarchive ``client``. Nothing is deleted: its calls, visits, spend and reports stay, its
    telephony webhooks still record calls, and its sites' snippets keep showing the sites' own numbers,
    because no tracking number (static or pool) is handed out for an archived client."""
    if archived and client.archived_at is None:
        client.archived_at = now
    elif not archived:
        client.archived_at = None


def can_see_client(user: User, client: Client | None) -> bool:
    if client is None or client.agency_id != user.agency_id:
        return False
    return user.role != Role.VIEWER or user.client_id == client.id


def can_edit(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.MANAGER)


class InvalidAccount(ValueError):
    """A user or agency cannot be created as asked; the message says which field and why."""


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10


def add_user(
    db: Session,
    agency: Agency,
    email: str,
    password: str,
    role: Role,
    *,
    client: Client | None = None,
    name: str = "",
) -> User:
    """A new user of ``agency``. Viewers need a client of the same agency; nobody else may have one."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidAccount(f"email: not an email address: {email!r}")
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"password: must be at least {MIN_PASSWORD} characters")
    if role == Role.VIEWER:
        if client is None or client.agency_id != agency.id:
            raise InvalidAccount("client_id: a viewer needs one client of the same agency")
    elif client is not None:
        raise InvalidAccount("client_id: only viewers are bound to one client")
    # Only this agency's users count: an address used in another agency is none of this one's business.
    if db.scalar(select(User.id).where(User.agency_id == agency.id, User.email == email)) is not None:
        raise InvalidAccount(f"email: {email} already has an account in this agency")
    user = User(
        agency_id=agency.id,
        email=email,
        name=name.strip()[:200],
        password_hash=hash_password(password),
        role=role,
        client_id=client.id if client else None,
    )
    db.add(user)
    db.flush()
    return user


# Higher is more: nobody raises their own role.
ROLE_RANK = {Role.VIEWER: 0, Role.MANAGER: 1, Role.ADMIN: 2}


def change_role(db: Session, actor: User, user: User, role: Role, client: Client | None) -> None:
    """Give ``user`` ``role`` (and, for a viewer, ``client``), as ``actor`` asked. Refused: raising one's
    own role, leaving the agency without an admin, a viewer without a client of the agency, and a client
    for anyone else."""
    if user.agency_id != actor.agency_id:
        raise InvalidAccount("user: no such user")
    if user.id == actor.id and ROLE_RANK[role] > ROLE_RANK[user.role]:
        raise InvalidAccount("role: nobody can raise their own role")
    if user.role == Role.ADMIN and role != Role.ADMIN:
        admins = db.scalars(select(User.id).where(User.agency_id == user.agency_id, User.role == Role.ADMIN))
        if set(admins) == {user.id}:
            raise InvalidAccount("role: the agency's last admin cannot be demoted; make another admin first")
    if role == Role.VIEWER:
        if client is None or client.agency_id != user.agency_id:
            raise InvalidAccount("client_id: a viewer needs one client of the same agency")
    elif client is not None:
        raise InvalidAccount("client_id: only viewers are bound to one client")
    user.role = role
    user.client_id = client.id if client else None


def create_agency(db: Session, name: str, admin_email: str, password: str) -> User:
    """A new agency with its first admin, who can then add managers, viewers and clients."""
    name = name.strip()
    if not name:
        raise InvalidAccount("name: an agency needs a name")
    agency = Agency(name=name[:200])
    db.add(agency)
    db.flush()
    return add_user(db, agency, admin_email, password, Role.ADMIN)


def number_used_in_agency(db: Session, number: TrackingNumber) -> bool:
    """Whether another number row of the same agency already has ``number.e164``.

    Tracking numbers are unique per agency; another agency's numbers are never looked at, so typing a
    number some other tenant uses neither fails nor tells anything about it.
    """
    client = db.get(Client, number.client_id)
    assert client is not None
    query = (
        select(TrackingNumber.id)
        .join(Client, Client.id == TrackingNumber.client_id)
        .where(Client.agency_id == client.agency_id, TrackingNumber.e164 == number.e164)
    )
    if number.id is not None:
        query = query.where(TrackingNumber.id != number.id)
    with db.no_autoflush:  # the changed row itself must not be written before it is checked
        return db.scalar(query.limit(1)) is not None
