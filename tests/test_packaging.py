"""What a newcomer and the package index see: the licence, the set-up steps, package READMEs
whose links work on the package index, and no pointer to notes outside the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def package_ids(path: Path) -> str:
    return path.name


def test_the_repository_has_an_mit_licence() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 zc-events contributors" in text


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids)
def test_each_package_ships_the_licence_it_declares(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (package / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids)
def test_package_readmes_have_no_relative_links(package: Path) -> None:
    """The package index shows the README without the repository around it: a relative link
    (``../../README.md``, ``docs/x.md``) leads nowhere there."""
    targets = LINK.findall((package / "README.md").read_text())
    relative = [t for t in targets if not re.match(r"(https?:|mailto:|#)", t)]
    assert relative == [], "name the file in the zc-events repository instead of linking to it"


def test_the_readme_says_how_to_get_hatch() -> None:
    text = (ROOT / "README.md").read_text()
    assert "pipx install hatch" in text
    assert "pip install --user hatch" in text


def test_no_document_points_to_notes_outside_the_repository() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("packages/*/*.md")]
        if re.search(r"issue notes|the issue tracker notes", path.read_text(), re.I)
        and path.name != "CHANGELOG.md"
    ]
    assert offenders == []
