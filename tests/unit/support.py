"""Helpers shared by unit tests: a clock that steps, and tasks run in-process."""

from __future__ import annotations

import datetime
import json
from typing import Any

from kombu.utils.json import dumps

from tasks.base import JSONResult
from workers.app import app

START = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


class SteppingClock:
    """A clock that moves one millisecond per reading, and jumps when told."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


def run_task(name: str, /, **kwargs: Any) -> Any:
    """Run a task in-process as a worker would; returns its JSON result or raises."""
    result = app.tasks[name].apply(kwargs=kwargs)
    if result.failed():
        raise result.result
    value = result.result
    assert isinstance(value, JSONResult)
    return json.loads(dumps(value))

