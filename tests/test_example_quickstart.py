"""examples/quickstart runs as its README says and prints what the README shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_quickstart(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    [demo] = readme_steps("examples/quickstart/README.md")
    result = demo.run()
    output_matches(demo.output, result.stdout.splitlines())
