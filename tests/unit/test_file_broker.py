"""The embedded default's file broker (tasks/file_broker.py): what kombu's filesystem transport
lacked, one property per test, through kombu's own API."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from tasks import file_broker
from tasks.file_broker import TRANSPORT_PATH, broker_folder, transport_options


def _connection(folder: Path, visibility_timeout: float = 300.0) -> Connection:
    url = f"filesystem://{folder}"
    return Connection(
        url, transport=TRANSPORT_PATH,
        transport_options=transport_options(url, visibility_timeout, 0.01),
    )


QUEUE = Queue("crud", Exchange("crud", type="direct"), routing_key="crud")


def _send(connection: Connection, body: Any) -> None:
    with connection.Producer(channel=connection.channel()) as producer:
        producer.publish(body, exchange=QUEUE.exchange, routing_key="crud", declare=[QUEUE],
                         serializer="json")


def _files(folder: Path, sub: str) -> list[str]:
    return sorted(os.listdir(folder / sub))


def test_the_folder_comes_from_the_url(tmp_path: Path) -> None:
    assert broker_folder(f"filesystem://{tmp_path}/broker") == tmp_path / "broker"
    with pytest.raises(ValueError, match="names no folder"):
        broker_folder("filesystem://")


def test_a_taken_message_is_kept_until_acknowledged(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        _send(connection, {"n": 1})
        assert len(_files(tmp_path, "queues")) == 1
        message = connection.SimpleQueue(QUEUE).get(timeout=1)
        assert message.payload == {"n": 1}
        assert _files(tmp_path, "queues") == [] and len(_files(tmp_path, "processing")) == 1
        message.ack()
        assert _files(tmp_path, "processing") == []


def test_a_requeued_message_is_delivered_again_and_its_claim_goes(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        _send(connection, {"n": 2})
        queue = connection.SimpleQueue(QUEUE)
        queue.get(timeout=1).requeue()
        assert _files(tmp_path, "processing") == []
        again = queue.get(timeout=1)
        assert again.payload == {"n": 2} and again.delivery_info.get("redelivered") is not False
        again.ack()


def test_a_dead_consumer_s_claim_goes_back_after_the_visibility_timeout(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        _send(connection, {"n": 3})
        queue = connection.SimpleQueue(QUEUE)
        queue.get(timeout=1)  # taken, never acknowledged
        queue.channel.do_restore = False  # and its process dies: nothing is put back
    claim = tmp_path / "processing" / _files(tmp_path, "processing")[0]
    old = time.time() - 10
    os.utime(claim, (old, old))  # as if its worker died 10 s ago
    with _connection(tmp_path, visibility_timeout=5) as other:
        other.default_channel.sweep()
        assert _files(tmp_path, "processing") == []
        assert other.SimpleQueue(QUEUE).get(timeout=1).payload == {"n": 3}


def test_name_order_is_send_order(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        for n in range(5):
            _send(connection, {"n": n})
        queue = connection.SimpleQueue(QUEUE)
        got = []
        for _ in range(5):
            message = queue.get(timeout=1)
            got.append(message.payload["n"])
            message.ack()
    assert got == [0, 1, 2, 3, 4]


def test_no_half_written_message_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_replace = os.replace

    def look_then_replace(source: Any, target: Any) -> None:
        seen.append(_files(tmp_path, "queues"))  # what a reader sees mid-write
        real_replace(source, target)

    with _connection(tmp_path) as connection:
        monkeypatch.setattr(file_broker.os, "replace", look_then_replace)
        _send(connection, {"n": 4})
    assert seen and all(not name.endswith(".msg") for names in seen for name in names)


def test_a_dead_event_receiver_s_queue_is_expired(tmp_path: Path) -> None:
    events = Exchange("celeryev", type="topic")
    dead = Queue("celeryev.dead", events, routing_key="#")
    with _connection(tmp_path) as connection:
        dead.bind(connection.default_channel).declare()
        with connection.Producer() as producer:
            producer.publish({"type": "worker-heartbeat"}, exchange=events,
                             routing_key="worker.heartbeat", serializer="json")
        stale = tmp_path / "queues" / _files(tmp_path, "queues")[0]
        old = time.time() - file_broker.EPHEMERAL_SECONDS - 1
        os.utime(stale, (old, old))
        connection.default_channel.sweep()
        assert _files(tmp_path, "queues") == []
        assert connection.default_channel.get_table("celeryev") == []
