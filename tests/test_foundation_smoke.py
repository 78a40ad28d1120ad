from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from tests.factories import PASSWORD, make_tenant, web_login
from tracking.accounts import check_password, hash_password
from tracking.db import Base


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_password_hash_round_trip() -> None:
    h = hash_password("s3cret")
    assert check_password(h, "s3cret")
    assert not check_password(h, "s3cret ")
    assert not check_password("garbage", "s3cret")


def test_login_and_clients_page(client, db) -> None:
    t = make_tenant(db, "Acme")
    other = make_tenant(db, "Other")
    assert client.get("/").status_code == 302
    forged = client.post("/login", data={"email": t.admin.email, "password": PASSWORD})
    assert forged.status_code == 400  # no form token: refused before the password is looked at
    bad = web_login(client, t.admin.email, "wrong")
    assert bad.status_code == 401
    ok = web_login(client, t.admin.email)
    assert ok.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Acme Client" in page and "Other Client" not in page
    assert client.get(f"/clients/{other.client.id}").status_code == 404


def test_api_requires_token_and_hides_other_agencies(client, db) -> None:
    t = make_tenant(db, "Acme")
    other = make_tenant(db, "Other")
    assert client.get("/api/v1/clients").status_code == 401
    auth = {"Authorization": f"Bearer {t.token}"}
    items = client.get("/api/v1/clients", headers=auth).get_json()["items"]
    assert [c["name"] for c in items] == ["Acme Client"]
    missing = client.get(f"/api/v1/clients/{other.client.id}", headers=auth)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    assert "/clients/{client_id}" in client.get("/api/v1/openapi.json").get_json()["paths"]
