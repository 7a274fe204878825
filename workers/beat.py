"""Beat's scheduler with a heartbeat file, so a health check can tell a hung beat.

Beat can hang without exiting (a broker call that never returns, a stuck lock), and its
schedule file changes only when an entry runs. `HeartbeatScheduler` touches a file on every
tick, before anything that could block; `dmr health beat` reports beat unhealthy when that
file is older than a limit. Beat ticks at least every `audit.compact_interval_seconds`
(2 s by default), so a minute without a touch means it is stuck.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

__all__ = ["DEFAULT_HEARTBEAT", "HeartbeatScheduler", "heartbeat_age"]

#: Where beat touches its heartbeat unless DMR_BEAT_HEARTBEAT names another file.
DEFAULT_HEARTBEAT = Path(tempfile.gettempdir()) / "dmr-beat.alive"


def heartbeat_path() -> Path:
    return Path(os.environ.get("DMR_BEAT_HEARTBEAT") or DEFAULT_HEARTBEAT)


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's persistent scheduler, touching `heartbeat_path()` on every tick."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_path().touch()
        return float(super().tick(*args, **kwargs))


def heartbeat_age() -> float | None:
    """Seconds since beat's last tick, or None when it never ticked."""
    try:
        return time.time() - heartbeat_path().stat().st_mtime
    except FileNotFoundError:
        return None
