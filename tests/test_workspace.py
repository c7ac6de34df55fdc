"""Every package is tested and type-checked: the test and lint environments install all of them.

mypy checks ``packages/*/src`` strictly (``hatch run lint:check``); a package missing from the
lint environment would fail there with import errors, and one missing from the test environment
would have its tests skipped or broken. This names the package to add instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _members(env: dict[str, Any]) -> set[str]:
    members = env.get("workspace", {}).get("members", [])
    return {m if isinstance(m, str) else m["path"] for m in members}


def test_test_and_lint_environments_install_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    envs = config["tool"]["hatch"]["envs"]
    packages = {
        f"packages/{p.name}"
        for p in (ROOT / "packages").iterdir()
        if (p / "pyproject.toml").exists()
    }
    assert len(packages) >= 5
    for name in ("hatch-test", "lint"):
        missing = sorted(packages - _members(envs[name]))
        assert not missing, f"add {missing} to [tool.hatch.envs.{name}] workspace.members"
    mypy = config["tool"]["mypy"]
    assert mypy["strict"] is True
    assert mypy["files"] == ["packages/*/src"]
