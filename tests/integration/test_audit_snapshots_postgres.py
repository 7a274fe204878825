"""Verification on PostgreSQL, where each statement of a READ COMMITTED transaction sees its
own snapshot: a compaction or purge committing during a verify must not look like damage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from registry import DynamicModelRegistry, Settings
from registry.audit.trail import AuditTrail

pytestmark = pytest.mark.integration


class Item(BaseModel):
    name: str
    count: int = 0


def open_registry(url: str) -> DynamicModelRegistry:
    settings = Settings().with_overrides(audit={"batch_size": 2, "max_wait_seconds": 0.001})
    return DynamicModelRegistry(url, settings=settings)


@pytest.fixture
def registries(postgres_url: str) -> Iterator[tuple[DynamicModelRegistry, DynamicModelRegistry]]:
    """The verifier's registry and the audit worker's, on one fresh database."""
    verifier = open_registry(postgres_url)
    verifier.register_model("Item", Item)
    worker = open_registry(postgres_url)
    yield verifier, worker
    verifier.close()
    worker.close()


def run_during_verify(
    verifier: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch, action: Any
) -> dict[str, Any]:
    """Verify, with `action` committed by another process right after the head is read."""
    trail = verifier.audit_logger.trail
    original = AuditTrail._read_head

    def read_head_then_act(self: AuditTrail, conn: Any) -> Any:
        head = original(self, conn)
        action()
        return head

    monkeypatch.setattr(trail, "_read_head", read_head_then_act.__get__(trail))
    return verifier.audit_logger.verify()


def test_verify_is_not_fooled_by_a_compaction_committing_meanwhile(
    registries: tuple[DynamicModelRegistry, DynamicModelRegistry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`verify` reads the head and then walks the blocks in separate READ COMMITTED
    statements; the audit worker compacts every two seconds, so `dmr audit verify` on a
    live system reports 'the newest blocks are missing' for a sound trail."""
    verifier, worker = registries
    for n in range(4):
        verifier.create("Item", {"name": f"i{n}"}, "u", "admin")
    verifier.audit_logger.compact(force=True)
    for n in range(2):
        verifier.create("Item", {"name": f"j{n}"}, "u", "admin")

    report = run_during_verify(verifier, monkeypatch,
                               lambda: worker.audit_logger.compact(force=True))

    assert report["ok"] is True, report
    assert worker.audit_logger.verify()["ok"] is True


def test_verify_is_not_fooled_by_a_purge_committing_meanwhile(
    registries: tuple[DynamicModelRegistry, DynamicModelRegistry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same race with retention: the walk starts from the anchor read before the purge,
    finds the first surviving block's prev_hash unequal to it, and reports a missing block."""
    verifier, worker = registries
    for n in range(4):
        verifier.create("Item", {"name": f"i{n}"}, "u", "admin")
    verifier.audit_logger.compact(force=True)

    report = run_during_verify(
        verifier, monkeypatch, lambda: worker.audit_logger.purge(retention_days=0)
    )

    assert report["ok"] is True, report
    assert worker.audit_logger.verify()["ok"] is True
