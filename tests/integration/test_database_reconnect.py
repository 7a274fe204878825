"""A pooled PostgreSQL connection whose server side has gone is replaced, not handed out."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import registry.database as database_module
from registry import DynamicModelRegistry

pytestmark = pytest.mark.integration


def test_an_idle_connection_killed_by_the_server_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = DynamicModelRegistry(postgres_url)
    with registry.database.read() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    killer = sa.create_engine(postgres_url)
    with killer.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    killer.dispose()
    monkeypatch.setattr(database_module, "IDLE_PING_SECONDS", 0.0)
    assert registry.list_models() == []  # checked out the dead connection: pinged, replaced
    with registry.database.read() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != backend
    registry.close()
