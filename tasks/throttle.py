"""`Throttle`: at most one go per interval, for the triggers that send a follow-up task
after others (audit compaction, the CQRS projector) from every pool thread or process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """`ready()` is True at most once per `min_interval` seconds (by `clock`)."""

    def __init__(
        self, min_interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self._last = -float("inf")
        self._lock = threading.Lock()  # a threads pool runs task handlers concurrently

    def ready(self) -> bool:
        with self._lock:
            now = self.clock()
            if now - self._last < self.min_interval:
                return False
            self._last = now
            return True
