"""The projector under concurrency on PostgreSQL: two projectors with four writers apply
each event once, and a rebuild while writers run equals the incremental projection."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registry import DynamicModelRegistry
from registry.errors import VersionConflict

pytestmark = pytest.mark.integration

SALES = {"name": "sales", "model": "Order", "group_by": ["category"],
         "measures": {"n": ["count"], "total": ["sum", "qty"], "low": ["min", "qty"],
                      "high": ["max", "qty"]}}


class Order(BaseModel):
    category: str
    qty: int = 0


@pytest.fixture
def url(postgres_url: str) -> Iterator[str]:
    registry = DynamicModelRegistry(postgres_url)
    registry.register_model("Order", Order, "cqrs")
    registry.define_projection(SALES)
    registry.close()
    yield postgres_url


def write(url: str, seed: int, count: int, errors: list[BaseException]) -> None:
    registry = DynamicModelRegistry(url)
    rng = random.Random(seed)
    mine: list[str] = []
    try:
        for _ in range(count):
            if mine and rng.random() < 0.5:
                agg = rng.choice(mine)
                if rng.random() < 0.15:
                    registry.execute_command({"type": "delete", "model": "Order",
                                              "aggregate_id": agg}, "w", "admin")
                    mine.remove(agg)
                    continue
                data = {"category": rng.choice("abc"), "qty": rng.randint(0, 50)}
                registry.execute_command({"type": "update", "model": "Order",
                                          "aggregate_id": agg, "data": data}, "w", "admin")
            else:
                created = registry.execute_command(
                    {"type": "create", "model": "Order",
                     "data": {"category": rng.choice("abc"), "qty": rng.randint(0, 50)}},
                    "w", "admin")
                mine.append(created["aggregate_id"])
    except (VersionConflict, Exception) as exc:  # any failure fails the test below
        errors.append(exc)
    finally:
        registry.close()


def all_events(registry: DynamicModelRegistry) -> list[dict[str, Any]]:
    found, after = [], 0
    while True:
        page = registry.events(after, 1000, "Order", user_role="admin")
        found += page["events"]
        if not page["events"]:
            return found
        after = page["last_position"]


def groups_of(registry: DynamicModelRegistry) -> dict[str, dict[str, Any]]:
    page = registry.execute_query({"type": "projection", "projection": "sales",
                                   "page_size": 100}, "t", "admin")
    return {item["category"]: item for item in page["items"]}


def test_two_projectors_and_four_writers_apply_each_event_once(url: str) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()
    writers = [threading.Thread(target=write, args=(url, n, 60, errors)) for n in range(4)]

    def project() -> None:
        registry = DynamicModelRegistry(url)
        try:
            while not stop.is_set():
                registry.project()
        except Exception as exc:
            errors.append(exc)
        finally:
            registry.close()

    projectors = [threading.Thread(target=project) for _ in range(2)]
    for thread in writers + projectors:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in projectors:
        thread.join()
    assert errors == []
    registry = DynamicModelRegistry(url)
    registry.project()
    events = all_events(registry)
    latest = {e["aggregate_id"]: e for e in events}
    groups: dict[str, list[int]] = {}
    for event in latest.values():
        if "state" in event["data"]:
            groups.setdefault(event["data"]["state"]["category"], []).append(
                event["data"]["state"]["qty"])
    want = {c: {"category": c, "n": len(q), "total": sum(q), "low": min(q), "high": max(q)}
            for c, q in groups.items()}
    assert groups_of(registry) == want
    live = {e["aggregate_id"]: e["version"] for e in latest.values() if "state" in e["data"]}
    with registry.database.read() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, version FROM dmr_r_order")).all())
    assert rows == live
    registry.close()


def test_a_rebuild_while_writers_run_equals_incremental(url: str) -> None:
    errors: list[BaseException] = []
    registry = DynamicModelRegistry(url)
    write(url, 99, 150, errors)  # history before the rebuild starts
    writers = [threading.Thread(target=write, args=(url, n, 40, errors)) for n in range(3)]
    for thread in writers:
        thread.start()
    rebuilt = registry.rebuild_projection("sales")
    for thread in writers:
        thread.join()
    assert errors == [] and rebuilt["events"] >= 150
    registry.project()
    after_rebuild = groups_of(registry)
    registry.rebuild_projection("sales")
    assert groups_of(registry) == after_rebuild
    # And both equal the fold of the events.
    latest = {e["aggregate_id"]: e for e in all_events(registry)}
    groups: dict[str, list[int]] = {}
    for event in latest.values():
        if "state" in event["data"]:
            groups.setdefault(event["data"]["state"]["category"], []).append(
                event["data"]["state"]["qty"])
    assert after_rebuild == {
        c: {"category": c, "n": len(q), "total": sum(q), "low": min(q), "high": max(q)}
        for c, q in groups.items()}
    registry.close()
