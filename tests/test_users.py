"""Creating agencies, users and API tokens: from the command line for the first admin, then the API."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from hub.cli import main
from tests.factories import issue_api_token, make_tenant, make_user, web_login
from tracking.models import Agency, ApiToken, Client, Role, User

GOOD = "correct-horse-battery"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def users(db) -> list[tuple[str, str, int | None]]:
    db.expire_all()
    return [(u.email, u.role.value, u.client_id) for u in db.scalars(select(User).order_by(User.id))]


def test_admin_adds_a_manager_and_a_viewer_who_sees_one_client(client, db) -> None:
    t = make_tenant(db, "Acme")
    other = Client(agency_id=t.agency.id, name="Second")
    db.add(other)
    db.commit()
    h = auth(t.token)
    manager = client.post(
        "/api/v1/users", json={"email": " Mia@Acme.example ", "password": GOOD, "role": "manager"}, headers=h
    )
    assert manager.status_code == 201
    assert manager.get_json() | {"id": 0} == {
        "id": 0,
        "email": "mia@acme.example",
        "name": "",
        "role": "manager",
        "client_id": None,
    }
    viewer = client.post(
        "/api/v1/users",
        json={"email": "owner@shop.example", "password": GOOD, "role": "viewer", "client_id": other.id},
        headers=h,
    )
    assert viewer.status_code == 201 and viewer.get_json()["client_id"] == other.id
    listed = client.get("/api/v1/users", headers=h).get_json()
    assert [u["email"] for u in listed["items"]] == [
        "admin@acme.example",
        "mia@acme.example",
        "owner@shop.example",
    ]

    # The new viewer logs in to the web UI and sees only the client they were given.
    assert web_login(client, "owner@shop.example", GOOD).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Second" in page and "Acme Client" not in page


def test_bad_users_are_refused_and_nothing_is_created(client, db) -> None:
    t = make_tenant(db, "Acme")
    foreign = make_tenant(db, "Rival")
    h = auth(t.token)
    before = users(db)
    cases = [
        ({"email": "x@acme.example", "password": "short", "role": "manager"}, "password"),
        ({"email": "not-an-email", "password": GOOD, "role": "manager"}, "email"),
        ({"email": "x@acme.example", "password": GOOD, "role": "owner"}, "role"),
        ({"email": "x@acme.example", "password": GOOD, "role": "viewer"}, "client_id"),
        (
            {"email": "x@acme.example", "password": GOOD, "role": "manager", "client_id": t.client.id},
            "client_id",
        ),
        # Another agency's client looks exactly like a missing one.
        (
            {"email": "x@acme.example", "password": GOOD, "role": "viewer", "client_id": foreign.client.id},
            "client_id",
        ),
        # An address already used in this agency (another agency's addresses are none of its business).
        ({"email": "ADMIN@acme.example", "password": GOOD, "role": "manager"}, "email"),
    ]
    for payload, bad_field in cases:
        resp = client.post("/api/v1/users", json=payload, headers=h)
        assert resp.status_code == 400, payload
        assert resp.get_json()["field"] == bad_field, resp.get_json()
    assert users(db) == before


def test_only_admins_manage_users_and_only_their_own_agency(client, db) -> None:
    t = make_tenant(db, "Acme")
    rival = make_tenant(db, "Rival")
    manager = make_user(db, t, "m@acme.example", Role.MANAGER)
    token = issue_api_token(db, manager, "m")
    db.commit()
    body = {"email": "new@acme.example", "password": GOOD, "role": "manager"}
    assert client.post("/api/v1/users", json=body, headers=auth(token)).status_code == 403
    assert client.get("/api/v1/users", headers=auth(token)).status_code == 403
    rival_view = client.get("/api/v1/users", headers=auth(rival.token)).get_json()
    assert [u["email"] for u in rival_view["items"]] == ["admin@rival.example"]
    assert "new@acme.example" not in [e for e, _, _ in users(db)]


def test_first_agency_user_and_token_from_the_command_line(app, db, monkeypatch) -> None:
    monkeypatch.setenv("OTKUDA_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("OTKUDA_INSTANCE_DIR", app.config["INSTANCE_DIR"])
    monkeypatch.setenv("OTKUDA_ENCRYPTION_KEY", app.config["ENCRYPTION_KEY"])
    runner = CliRunner()
    made = runner.invoke(
        main, ["agency", "create", "North", "--admin-email", "boss@north.example"], input=f"{GOOD}\n{GOOD}\n"
    )
    assert made.exit_code == 0, made.output
    agency = db.scalars(select(Agency).where(Agency.name == "North")).one()
    assert users(db) == [("boss@north.example", "admin", None)]

    client_row = Client(agency_id=agency.id, name="Bakery")
    db.add(client_row)
    db.commit()
    add = ["user", "add", "shop@bakery.example", "--agency-id", str(agency.id), "--role", "viewer"]
    refused = runner.invoke(main, add, env={"OTKUDA_USER_PASSWORD": GOOD})
    assert refused.exit_code == 2 and "a viewer needs one client" in refused.output
    assert len(users(db)) == 1
    added = runner.invoke(main, [*add, "--client-id", str(client_row.id)], env={"OTKUDA_USER_PASSWORD": GOOD})
    assert added.exit_code == 0, added.output
    assert users(db)[1] == ("shop@bakery.example", "viewer", client_row.id)

    issued = runner.invoke(main, ["token", "issue", "shop@bakery.example", "--name", "power-bi"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ApiToken)) == 1
    me = app.test_client().get("/api/v1/me", headers=auth(token)).get_json()
    assert (me["email"], me["role"], me["client_id"]) == ("shop@bakery.example", "viewer", client_row.id)
    assert runner.invoke(main, ["token", "issue", "ghost@x.example"]).exit_code == 2


def test_roles_change_by_one_rule_for_the_api_and_the_page(client, db) -> None:
    import pytest

    from tests.factories import csrf
    from tracking.accounts import InvalidAccount, change_role

    t = make_tenant(db, "Acme")
    other = make_tenant(db, "Other")
    manager = make_user(db, t, "m@acme.example", Role.MANAGER)
    h = auth(t.token)
    url = f"/api/v1/users/{manager.id}"
    # A viewer needs a client of the agency; another agency's client is no client at all.
    assert (
        "a viewer needs one client"
        in client.patch(url, json={"role": "viewer"}, headers=h).get_json()["message"]
    )
    foreign = client.patch(url, json={"role": "viewer", "client_id": other.client.id}, headers=h)
    assert foreign.status_code == 400 and "no such client" in foreign.get_json()["message"]
    made = client.patch(url, json={"role": "viewer", "client_id": t.client.id}, headers=h)
    assert made.status_code == 200 and made.get_json()["client_id"] == t.client.id
    assert users(db)[-1] == ("m@acme.example", "viewer", t.client.id)
    # Other agencies' users are not there; the last admin stays an admin.
    assert (
        client.patch(f"/api/v1/users/{other.admin.id}", json={"role": "viewer"}, headers=h).status_code == 404
    )
    last = client.patch(f"/api/v1/users/{t.admin.id}", json={"role": "manager"}, headers=h)
    assert last.status_code == 400 and "last admin cannot be demoted" in last.get_json()["message"]
    manager_token = issue_api_token(db, manager)
    db.commit()
    assert client.patch(url, json={"role": "admin"}, headers=auth(manager_token)).status_code == 403

    # Nobody raises their own role, whatever page or client asks.
    db.expire_all()
    manager = db.get(User, manager.id)
    with pytest.raises(InvalidAccount, match="nobody can raise their own role"):
        change_role(db, manager, manager, Role.ADMIN, None)
    db.rollback()

    # The page: a manager again, then an admin, after which the first admin may step down.
    web_login(client, t.admin.email)
    page = f"/settings/users/{manager.id}/role"
    form = {"csrf_token": csrf(client), "role": "manager", "client_id": str(t.client.id)}
    assert client.post(page, data=form).status_code == 302
    assert users(db)[-1] == ("m@acme.example", "manager", None)
    refused = client.post(f"/settings/users/{t.admin.id}/role", data={**form, "role": "viewer"})
    assert refused.status_code == 400 and "last admin cannot be demoted" in refused.get_data(as_text=True)
    client.post(page, data={**form, "role": "admin"})
    assert (
        client.post(f"/settings/users/{t.admin.id}/role", data={**form, "role": "manager"}).status_code == 302
    )
    assert users(db)[0][1] == "manager"
    assert client.get("/settings/users").status_code == 403  # now a manager: no user management
