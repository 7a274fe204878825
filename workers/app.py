"""The Celery app, `workers.app:app` (`celery -A workers.app worker`).

Importing this module reads settings and builds the app; it opens no database. Each process
that runs tasks gets one `DynamicModelRegistry`, created in that process on first need: prefork
children in `worker_process_init` (after the fork, so no engine or connection is shared across
processes), a solo or threads worker on its first task. The registry checks the shared
database's version inside every operation (Invariant 2), so no broadcast is needed to keep
children in sync.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery

from registry import DynamicModelRegistry
from registry.settings import Settings
from tasks.trust import enable_signing

from .config import celery_config

__all__ = ["RegistryCelery", "TASK_MODULES", "app", "create_app"]

#: Modules whose tasks a worker registers.
TASK_MODULES = ["tasks.models", "tasks.records", "tasks.audit", "tasks.cqrs", "tasks.imports"]


class RegistryCelery(Celery):  # type: ignore[misc]
    """The project's Celery app: it owns the settings and, per process, one registry."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__("dmr", include=TASK_MODULES, **options)
        self.settings = settings
        self.config_from_object(celery_config(settings))
        if settings.security.signing:  # sign what this process sends, take only signed tasks
            enable_signing(self, settings.security)
            self.conf.worker_consumer = "workers.signing_consumer:SigningConsumer"
        self._registry: DynamicModelRegistry | None = None
        self._registry_pid: int | None = None
        self._registry_lock = threading.Lock()

    @property
    def registry(self) -> DynamicModelRegistry:
        """This process's registry; opened here if this process has none yet."""
        registry = self._registry
        if registry is None or self._registry_pid != os.getpid():
            registry = self.open_registry()
        return registry

    def open_registry(self) -> DynamicModelRegistry:
        """Open the shared database for this process (once; a forked copy is replaced)."""
        with self._registry_lock:
            if self._registry is None or self._registry_pid != os.getpid():
                self._registry = DynamicModelRegistry.from_settings(self.settings)
                self._registry_pid = os.getpid()
            return self._registry

    def use_registry(self, registry: DynamicModelRegistry) -> None:
        """Run this process's tasks on a given registry (tests, in-process tools)."""
        with self._registry_lock:
            self._registry, self._registry_pid = registry, os.getpid()

    def close_registry(self) -> None:
        with self._registry_lock:
            if self._registry is not None and self._registry_pid == os.getpid():
                self._registry.close()
            self._registry = self._registry_pid = None


def create_app(settings: Settings | None = None) -> RegistryCelery:
    """A worker app from settings (`Settings.load()` when none are given)."""
    from . import boot

    created = RegistryCelery(settings or Settings.load())
    boot.connect(created)
    return created


app = create_app()
