"""The README's quickstart works verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_demo_prints_the_design_examples() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("post_no_wait('add', data={'x': 1, 'y': 1}) -> ")
    assert "  r.data        {'answer': 2}" in lines
    assert "  r.has_errors  False" in lines
    assert "  r.data        None" in lines
    assert "  r.has_errors  True" in lines
    assert "  r.errors[0]   {'type': 'KeyError', 'message': \"'y'\"} + trace" in lines
