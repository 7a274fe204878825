"""Broker options that only some transports take."""

from __future__ import annotations

from registry.settings import CelerySettings
from tasks.wire import wire_config


def test_redis_gets_a_visibility_timeout_and_a_matching_restore_sweep() -> None:
    options = wire_config(
        CelerySettings(broker_url="redis://localhost:6379/0", visibility_timeout=3.0)
    )["broker_transport_options"]
    assert options["visibility_timeout"] == 3.0
    assert options["unacked_restore_interval"] == 1 and options["unacked_restore_throttle"] == 1
    default = wire_config(CelerySettings(broker_url="rediss://h/0"))["broker_transport_options"]
    assert default["visibility_timeout"] == 300.0 and default["unacked_restore_interval"] == 10


def test_other_transports_get_no_transport_options() -> None:
    for url in ("amqp://guest:guest@localhost//", "sqla+sqlite:///broker.sqlite3"):
        assert "broker_transport_options" not in wire_config(CelerySettings(broker_url=url))
