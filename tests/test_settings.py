"""One typed settings object: every OTKUDA_* variable the code reads is declared there, with its default,
and the README's table is the one generated from it."""

from __future__ import annotations

import pathlib
import re

from connectors import registry
from hub.config import load_config
from jobs import providers
from jobs.runtime import setting
from tracking.settings import PREFIX, Settings, markdown_table

ROOT = pathlib.Path(__file__).parent.parent


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme


def test_every_variable_the_code_names_is_declared() -> None:
    declared = {PREFIX + name.upper() for name in Settings.model_fields}
    named: set[str] = set()
    for package in ("hub", "jobs", "tracking", "connectors"):
        for path in (ROOT / package).rglob("*.py"):
            named |= set(re.findall(r"OTKUDA_[A-Z][A-Z0-9_]*[A-Z0-9]", path.read_text()))
    # The snippet's placeholders are not variables; the provider family is documented as one row.
    named -= {"OTKUDA_SITE_KEY", "OTKUDA_HUB"}
    families = {f"OTKUDA_{providers.prefix_of(registry.load(c).PROVIDER)}_" for c in registry.CONNECTORS}
    assert "OTKUDA_GOOGLE_" in families
    named = {n for n in named if not n.startswith(tuple(families))}
    assert named - declared == set()
    # And the settings the jobs ask for by name are declared too.
    scheduler = (ROOT / "jobs").rglob("*.py")
    asked = {m for p in scheduler for m in re.findall(r'setting\("([A-Z_]+)"', p.read_text())}
    assert asked and {PREFIX + a for a in asked} <= declared


def test_environment_reaches_the_hub_and_the_jobs_typed(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OTKUDA_TRACKING_MAX_BODY", "2048")
    monkeypatch.setenv("OTKUDA_DELIVERY_BATCH_SIZE", "7")
    monkeypatch.setenv("OTKUDA_BASE_URL", "https://hub.example/")
    config = load_config({"INSTANCE_DIR": str(tmp_path)})
    assert config["TRACKING_MAX_BODY"] == 2048 and config["BASE_URL"] == "https://hub.example"
    assert setting({}, "DELIVERY_BATCH_SIZE") == 7
    # The app config wins over the environment; an absent variable gives the declared default.
    assert setting({"DELIVERY_BATCH_SIZE": 3}, "DELIVERY_BATCH_SIZE") == 3
    assert setting({}, "SCHEDULER_THREADS") == 4
    monkeypatch.setenv("OTKUDA_TRACKING_MAX_BODY", "lots")
    try:
        load_config({"INSTANCE_DIR": str(tmp_path)})
    except ValueError as exc:
        assert "tracking_max_body" in str(exc)
    else:
        raise AssertionError("a variable that is not a number was taken")
