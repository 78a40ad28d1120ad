"""``python -m hub.cli`` and ``python -m hub`` offer every command the ``otkuda`` script does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _commands(help_text: str) -> set[str]:
    section = help_text.split("Commands:", 1)[1]
    return set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", section, flags=re.MULTILINE))


@pytest.mark.slow
@pytest.mark.parametrize("module", ["hub.cli", "hub"])
def test_module_entry_offers_every_command_of_the_script(module: str, tmp_path: Path) -> None:
    expected = set(main.commands)
    assert {"agency", "user", "token", "db", "serve"} <= expected
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "OTKUDA_INSTANCE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert _commands(out) == expected
    # A group defined late in the module really runs, not only appears in the listing.
    sub = subprocess.run(
        [sys.executable, "-m", module, "token", "issue", "--help"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "OTKUDA_INSTANCE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sub.returncode == 0 and "--agency-id" in sub.stdout
