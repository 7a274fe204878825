"""README.md's producer examples run against real workers, in a process of their own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.readme import code_blocks, needs_a_worker

pytestmark = pytest.mark.integration

PRODUCERS = [block for block in code_blocks("python") if needs_a_worker(block)]


@pytest.mark.usefixtures("workers")
def test_producer_examples_run(service_env: dict[str, str]) -> None:
    assert len(PRODUCERS) == 2
    for block in PRODUCERS:  # in order: the client registers the model the raw one uses
        done = subprocess.run(
            [sys.executable, "-c", block],
            env={**os.environ, **service_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
