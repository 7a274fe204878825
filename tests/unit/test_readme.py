"""README.md's in-process examples run, and CI runs README's test command word for word."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from tests.readme import README, code_blocks, needs_a_worker

IN_PROCESS = [block for block in code_blocks("python") if not needs_a_worker(block)]


@pytest.mark.parametrize("block", IN_PROCESS, ids=[f"block{i}" for i in range(len(IN_PROCESS))])
def test_in_process_examples_run(block: str) -> None:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        # dont_inherit: the example runs as written, not under this module's __future__ import.
        exec(compile(block, str(README), "exec", dont_inherit=True), {"__name__": "readme"})
    for line in block.splitlines():  # a printed line's comment says what it prints
        if "print(" in line and "# " in line:
            assert line.split("# ", 1)[1] in output.getvalue()


def test_there_are_in_process_and_producer_examples() -> None:
    assert IN_PROCESS
    assert len(code_blocks("python")) > len(IN_PROCESS)


def test_ci_runs_the_readme_test_command() -> None:
    shell = code_blocks("sh")
    test_command = next(block.strip() for block in shell if "pytest" in block)
    ci_script = (Path(README).parent / ".ci" / "run").read_text()
    assert test_command in ci_script.splitlines()
