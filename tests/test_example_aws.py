"""examples/aws runs as its README says (memory backend, then RabbitMQ) and prints what it shows.

The script creates and deletes its own bucket (on a moto server it starts), exchange and queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.s3
@pytest.mark.rabbitmq
def test_aws_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    on_memory, on_rabbitmq = readme_steps("examples/aws/README.md")
    for step in (on_memory, on_rabbitmq):
        result = step.run()
        output_matches(step.output, result.stdout.splitlines())
