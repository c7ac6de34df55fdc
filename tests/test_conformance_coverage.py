"""Every installed backend runs both halves of the conformance suite, sync and async
(docs/writing-a-transport.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from zc_events._registry import BACKENDS, installed

ROOT = Path(__file__).resolve().parents[1]


def conformance_classes(base: str = "BackendConformance") -> dict[str, list[str]]:
    """backend_name → test classes that subclass ``base``, found by reading the tests."""
    found: dict[str, list[str]] = {}
    files = [*ROOT.glob("packages/*/tests/**/*.py"), *ROOT.glob("tests/**/*.py")]
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if base not in bases:
                continue
            for stmt in node.body:
                targets = (
                    [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                    if isinstance(stmt, ast.Assign)
                    else [stmt.target.id]
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    else []
                )
                value = getattr(stmt, "value", None)
                if "backend_name" in targets and isinstance(value, ast.Constant):
                    found.setdefault(str(value.value), []).append(
                        f"{path.relative_to(ROOT)}::{node.name}"
                    )
    return found


def test_every_installed_backend_runs_the_conformance_suite() -> None:
    covered = conformance_classes()
    missing = [name for name in installed(BACKENDS) if name not in covered]
    assert not missing, f"installed backends without a BackendConformance test: {missing}"
    assert "memory" in covered


def test_every_installed_backend_runs_the_async_conformance_suite() -> None:
    # Natively or through the thread adapter: AsyncEventClient works with every backend.
    covered = conformance_classes("AsyncBackendConformance")
    missing = [name for name in installed(BACKENDS) if name not in covered]
    assert not missing, f"installed backends without an AsyncBackendConformance test: {missing}"
    assert "memory" in covered
    # A sync BackendConformance class does not count for the async half, nor the reverse.
    assert set(covered["memory"]).isdisjoint(conformance_classes()["memory"])
