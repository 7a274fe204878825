"""The README's first command: the whole flow on the embedded default, no services."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_the_product_scenario_through_a_worker(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DMR_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    run = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert 'records.read as user -> price "***"' in out
    assert "records.create with bad data -> refused, nothing written" in out
    assert "the audit trail is intact" in out
    assert re.search(r"Flower saw \d+ tasks \(records.create, ", out)
    assert "None" not in out and "True" not in out and "'" not in out.replace("'Product'", "")
    assert "records.update as admin -> price 899.99, version 2" in out
    assert "records.history as user -> create" in out and "update" in out
    # The figure itself is a benchmark's business (bench/, BENCHMARKS.md): on a loaded
    # machine it says nothing about the code, so only its presence is checked here.
    assert re.search(r"median [\d.]+ ms", out)
    assert "Worker and Flower stopped cleanly." in out
    assert "temporary folder, removed at the end" in out and "/tmp" not in out
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the working directory
