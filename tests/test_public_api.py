"""Plugins use only the public core API: no package but the core touches ``zc_events._…``.

What a plugin needs from the core is exported from ``zc_events`` (or a public submodule such as
``zc_events.legacy`` or ``zc_events.testing``) and documented in docs/writing-a-transport.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zc_events

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "packages" / "zc-events-core"


def _private(dotted: str) -> bool:
    """True for ``zc_events._x`` and anything below it (``__version__`` and the like are fine)."""
    parts = dotted.split(".")
    if parts[0] != "zc_events":
        return False
    return any(p.startswith("_") and not p.startswith("__") for p in parts[1:])


def private_uses(source: str, filename: str = "<source>") -> list[str]:
    """``line: what`` for every use of a private core name in ``source``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _private(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
            else:
                found += [
                    f"{node.lineno}: from {node.module} import {a.name}"
                    for a in node.names
                    if _private(f"{node.module}.{a.name}")
                ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            dotted = _dotted(node)  # reported once, where the private part starts
            if dotted and _private(dotted):
                found.append(f"{node.lineno}: {dotted}")
    return sorted(set(found), key=lambda s: int(s.split(":")[0]))


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def plugin_sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.glob("packages/*/src/**/*.py")
        if not path.is_relative_to(CORE) and ".hatch" not in path.parts
    )


def test_plugins_import_only_public_core_names() -> None:
    sources = plugin_sources()
    assert len(sources) > 10, "found no plugin sources: did the layout change?"
    offences = [
        f"{path.relative_to(ROOT)}:{use}"
        for path in sources
        for use in private_uses(path.read_text(), str(path))
    ]
    assert not offences, (
        "plugins must use only public zc_events names (export what they need from "
        "zc_events/__init__.py and document it in docs/writing-a-transport.md):\n"
        + "\n".join(offences)
    )


def test_the_check_finds_every_form_of_private_use() -> None:
    source = (
        "import zc_events._worker\n"
        "from zc_events._registry import import_string\n"
        "from zc_events import _json\n"
        "import zc_events\n"
        "zc_events._envelope.new_id()\n"
        "from zc_events import legacy, __version__\n"
        "from zc_events.testing.conformance import BackendConformance\n"
        "from . import _amqp\n"
    )
    assert [use.split(":")[0] for use in private_uses(source)] == ["1", "2", "3", "5"]


def test_what_plugins_need_is_exported() -> None:
    for name in ("serve", "import_modules", "import_string", "new_id", "batch_error"):
        assert name in zc_events.__all__
        assert getattr(zc_events, name).__doc__
