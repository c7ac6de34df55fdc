"""Run an example the way its README says: the ``readme_steps`` fixture.

An example's README lists its commands in ```` ```sh ```` blocks, one command per line
(``cd examples/x && VAR=value python script.py``; ``&&`` chains several), and may follow a command
with a ```` ```text ```` block: the output the user sees. The tests run those very commands, so
a README and its example cannot drift apart. A test may add environment variables (unique
broker names, so that concurrent runs do not meet) but never changes a command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Step:
    """One command of a README, ready to run from the repository root."""

    command: str  # as written in the README
    argv: list[str]
    cwd: Path
    env: dict[str, str]  # the VAR=value assignments written before the command
    output: list[str] = field(default_factory=list)  # the ```text block after it, if any

    def overrides(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
        """The README's assignments, then ``extra``: the ``env`` argument of ``run_worker``."""
        return {**self.env, **(extra or {})}

    def environment(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """This process's environment, then the README's assignments, then ``extra`` (a value
        of None removes a variable)."""
        env = {**os.environ, **self.env}
        for name, value in (extra or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def run(
        self, extra: Mapping[str, str | None] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion; fail the test, with its output, if it exits non-zero."""
        result = subprocess.run(
            self.argv,
            cwd=self.cwd,
            env=self.environment(extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"`{self.command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
        return result


def _argv(words: list[str]) -> list[str]:
    """The README's program names as this test environment runs them."""
    program, *args = words
    if program in ("python", "python3"):
        return [sys.executable, *args]
    if program in ("celery", "django-admin"):
        return [sys.executable, "-m", program.replace("-", "."), *args]
    if program == "zc-events":
        return [sys.executable, "-m", "zc_events", *args]
    return words


def _steps(line: str) -> list[Step]:
    words = shlex.split(line, comments=True)
    if words and words[0] == "$":
        words = words[1:]
    cwd = ROOT
    steps = []
    while words:
        part = words[: words.index("&&")] if "&&" in words else words
        words = words[len(part) + 1 :]
        if part[0] == "cd":
            cwd = (cwd / part[1]).resolve()
            continue
        env = {}
        while part and _ASSIGNMENT.match(part[0]):
            name, _, value = part.pop(0).partition("=")
            env[name] = value
        steps.append(Step(line, _argv(part), cwd, env))
    return steps


def readme_steps_of(path: Path) -> list[Step]:
    """The commands in ``path``'s ```sh blocks, in order, with the ```text output after each."""
    steps: list[Step] = []
    for kind, body in _BLOCK.findall(path.read_text()):
        if kind == "sh":
            for line in body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    steps += _steps(line.strip())
        elif kind == "text" and steps:
            steps[-1].output = body.rstrip("\n").splitlines()
    return steps


@pytest.fixture
def readme_steps() -> Callable[[str], list[Step]]:
    """``readme_steps("examples/rabbitmq/README.md")``: that README's commands as Steps."""

    def steps(relative: str) -> list[Step]:
        found = readme_steps_of(ROOT / relative)
        assert found, f"{relative} has no ```sh block of commands"
        return found

    return steps


def assert_output_matches(expected: list[str], actual: list[str]) -> None:
    """``actual`` is ``expected`` line by line; in ``expected``, ``…`` stands for any text."""
    assert len(actual) == len(expected), "\n".join(actual)
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(piece) for piece in want.split("…"))
        assert re.fullmatch(pattern, got), f"README says {want!r}, the example printed {got!r}"


@pytest.fixture
def output_matches() -> Callable[[list[str], list[str]], None]:
    """``output_matches(expected, actual)``: see :func:`assert_output_matches`."""
    return assert_output_matches
