"""Every module of the product imports: run on the lowest allowed dependency versions (make test-lowest), it
catches a floor in pyproject.toml that is below what the code uses."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("tracking", "connectors", "jobs", "hub")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            # A __main__ module runs its program when imported; hub.__main__ is covered by the CLI tests.
            if info.name.endswith(".__main__"):
                continue
            if ".migrations." not in info.name and not info.name.endswith(".migrations"):
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name
