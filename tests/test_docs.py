"""The documentation stands on its own: its links resolve inside the repository, and nothing
points to documents a reader of the repository cannot open."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".hatch", "node_modules", "build", "dist", "__pycache__"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: References to documents outside the repository (spelled so this file does not match itself).
OUTSIDE = ("DESIGN " + "\N{SECTION SIGN}", "../" + "shared")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def _files(*suffixes: str) -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*")
        if path.suffix in suffixes
        and path.is_file()
        and not SKIP_DIRS & set(path.relative_to(ROOT).parts)
    )


def markdown_files() -> list[Path]:
    return _files(".md")


def broken_links(path: Path) -> list[str]:
    """Relative links in ``path`` whose target file or folder does not exist."""
    broken = []
    for target in LINK.findall(CODE.sub("", path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        file_part = target.split("#", 1)[0]
        if not (path.parent / file_part).resolve().exists():
            broken.append(target)
    return broken


def test_the_documents_exist_and_are_indexed() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert doc.name == "README.md" or f"({doc.name})" in index, f"{doc.name} not in the index"
    for name in ("architecture.md", "protocol.md", "writing-a-transport.md"):
        assert (ROOT / "docs" / name).is_file()
    assert "docs/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_nothing_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _files(".py", ".md", ".toml", ".cfg", ".txt", ".rst")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(marker in line for marker in OUTSIDE)
    ]
    assert offenders == [], "point to docs/ in the repository instead"


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("x")
    page.write_text("[a](there.md#x) [b](missing.md) [c](https://example.com) [d](#top) `f[k](x)`")
    assert broken_links(page) == ["missing.md"]
