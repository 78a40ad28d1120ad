"""Failed logins are throttled per account and per address; successful ones cost nothing."""

from __future__ import annotations

from tests.factories import PASSWORD, csrf, make_tenant, make_user
from tracking.models import Role


def _login(client, email: str, password: str, ip: str):
    form = {"email": email, "password": password, "csrf_token": csrf(client)}
    return client.post("/login", data=form, environ_base={"REMOTE_ADDR": ip})


def _logged_in(client) -> bool:
    with client.session_transaction() as sess:
        return "user_id" in sess


def test_guessing_one_accounts_password_from_many_addresses(make_hub, db) -> None:
    t = make_tenant(db)
    make_user(db, t, "other@acme.example", Role.MANAGER)
    client = make_hub(LOGIN_FAILURES_PER_ACCOUNT="3 per 15 minutes").test_client()
    codes = [_login(client, t.admin.email, f"guess {i}", f"203.0.113.{i}").status_code for i in range(3)]
    assert codes == [401] * 3
    # Blocked before the password is looked at: even the right one is refused, so a hit tells nothing.
    blocked = _login(client, t.admin.email.upper(), PASSWORD, "198.51.100.1")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 60
    assert not _logged_in(client)
    # Another account is not affected.
    assert _login(client, "other@acme.example", PASSWORD, "198.51.100.1").status_code == 302


def test_one_address_trying_many_accounts(make_hub, db) -> None:
    t = make_tenant(db)
    for i in range(3):
        make_user(db, t, f"m{i}@acme.example", Role.MANAGER)
    client = make_hub(LOGIN_FAILURES_PER_IP="3 per hour").test_client()
    for i in range(3):
        assert _login(client, f"m{i}@acme.example", "wrong password", "203.0.113.7").status_code == 401
    assert _login(client, t.admin.email, PASSWORD, "203.0.113.7").status_code == 429
    assert not _logged_in(client)
    assert _login(client, t.admin.email, PASSWORD, "198.51.100.1").status_code == 302


def test_successful_logins_are_not_throttled(make_hub, db) -> None:
    t = make_tenant(db)
    client = make_hub(LOGIN_FAILURES_PER_ACCOUNT="2 per 15 minutes").test_client()
    for _ in range(4):
        assert _login(client, t.admin.email, PASSWORD, "203.0.113.7").status_code == 302
