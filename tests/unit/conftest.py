"""Fixtures for the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def results_outside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running a task in-process opens the configured result backend, by default a SQLite
    file relative to the working directory: keep it in the test's own folder."""
    monkeypatch.chdir(tmp_path)
