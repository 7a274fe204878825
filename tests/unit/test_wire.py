"""Broker options that only some transports take."""

from __future__ import annotations

import ssl

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


def test_redis_urls_use_the_transport_that_drops_entries_that_are_not_messages() -> None:
    plain = wire_config(CelerySettings(broker_url="redis://localhost:6379/0"))
    assert plain["broker_transport"] == "tasks.redis_broker:Transport"
    assert "broker_use_ssl" not in plain
    secure = wire_config(CelerySettings(broker_url="rediss://h/0"))
    assert secure["broker_transport"] == "tasks.redis_broker:Transport"
    # TLS stays on for rediss://, as kombu does when the scheme names its own transport.
    assert secure["broker_use_ssl"]["ssl_cert_reqs"] == ssl.CERT_NONE
    amqp = wire_config(CelerySettings(broker_url="amqp://guest:guest@localhost//"))
    assert "broker_transport" not in amqp
