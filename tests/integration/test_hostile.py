"""Issue 9: no message stops a worker. Hostile messages, published raw through kombu (so the
test controls body, headers, content type and compression), go to one real worker on RabbitMQ
and one on Redis. After each: its producer got `MessageRefused` (when the message named a task
id), the worker logged one line for it, and the same worker, with the same pool children,
answers a normal task within a second; the message is gone from the broker, never redelivered.
"""

from __future__ import annotations

import bz2
import functools
import json
import os
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.result import AsyncResult
from celery.utils.nodenames import worker_direct
from kombu import Connection, Exchange

from registry.errors import MessageRefused
from registry.settings import Settings
from tasks.client import RegistryClient, TaskHandle

from .conftest import WorkerProcess

pytestmark = pytest.mark.integration

REDIS_BROKER = os.environ.get("DMR_TEST_REDIS_BROKER_URL", "redis://127.0.0.1:6379/9")
#: How long a normal task may take after a hostile message (the issue's bound).
ANSWER_SECONDS = 1.0
DIRECT_EXCHANGE = Exchange("C.dq2", type="direct")


@dataclass
class Hostile:
    """One raw message: its body bytes and what the envelope claims about them."""

    body: bytes
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    headers: dict[str, Any] = field(default_factory=dict)
    #: Whether the message names a task id that its producer can wait on.
    answered: bool = True
    #: What the refusal's reason must say.
    reason: str = ""


def _nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@functools.cache
def _bz2_bomb() -> bytes:
    """268 bytes on the wire, 200 MB once decompressed (the issue's message)."""
    return bz2.compress(b"\0" * 200_000_000, 9)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


SHAPE = "[args, kwargs, embed]"
EMPTY = _json([[], {}, {}])
HOSTILE: dict[str, Any] = {
    # kwargs holding a list 480 deep: ~1 KB that overflowed the stack on its way to a child.
    "nested_480_deep": lambda: Hostile(
        _json([[], {"model": "M", "data": _nested_list(480)}, {}]), reason="levels deep"),
    "nested_past_the_json_parser": lambda: Hostile(
        b"[" * 100_000 + b"]" * 100_000, reason="deeper than the parser allows"),
    "kwargs_a_list": lambda: Hostile(_json([[], [1, 2], {}]), reason=SHAPE),
    "args_a_number": lambda: Hostile(_json([5, {}, {}]), reason=SHAPE),
    "three_numbers": lambda: Hostile(_json([1, 2, 3]), reason=SHAPE),
    "a_string": lambda: Hostile(_json("abc"), reason=SHAPE),
    "an_empty_object": lambda: Hostile(_json({}), reason=SHAPE),
    "a_protocol_1_body": lambda: Hostile(_json({"args": [], "kwargs": 5}), reason=SHAPE),
    "null": lambda: Hostile(_json(None), reason=SHAPE),
    "a_number": lambda: Hostile(_json(123), reason=SHAPE),
    "embed_callbacks_a_string": lambda: Hostile(
        _json([[], {}, {"callbacks": "abc"}]), reason="'callbacks'"),
    "embed_a_malformed_chord": lambda: Hostile(
        _json([[], {}, {"chord": {}, "errbacks": [{"task": 5}]}]), reason="has the wrong type"),
    "invalid_json": lambda: Hostile(b'[[], {"model": ', reason="not valid JSON"),
    "invalid_utf8": lambda: Hostile(b'[[], {"model": "\xff\xfe"}, {}]', reason="not valid JSON"),
    "a_bz2_bomb": lambda: Hostile(
        _bz2_bomb(), headers={"compression": "application/x-bz2"}, reason="compressed"),
    "zlib_compressed": lambda: Hostile(
        zlib.compress(EMPTY), headers={"compression": "application/x-gzip"},
        reason="compressed"),
    "unknown_compression": lambda: Hostile(
        EMPTY, headers={"compression": "rar"}, reason="compressed"),
    "pickle": lambda: Hostile(
        b"\x80\x04N.", content_type="application/x-python-serialize",
        content_encoding="binary", reason="content type"),
    "yaml": lambda: Hostile(
        b"- []\n- {}\n- {}\n", content_type="application/x-yaml", reason="content type"),
    "a_task_name_that_is_a_list": lambda: Hostile(
        EMPTY, headers={"task": ["records.read"]}, reason="'task' header"),
    "no_task_id": lambda: Hostile(EMPTY, headers={"id": None}, answered=False),
    "a_task_id_that_is_a_number": lambda: Hostile(EMPTY, headers={"id": 5}, answered=False),
    "a_malformed_eta": lambda: Hostile(
        EMPTY, headers={"eta": "next tuesday"}, reason="invalid ETA"),
    "an_eta_that_is_a_list": lambda: Hostile(EMPTY, headers={"eta": [1]}, reason="'eta'"),
    "a_malformed_time_limit": lambda: Hostile(
        EMPTY, headers={"timelimit": "abc"}, reason="'timelimit'"),
    "retries_a_string": lambda: Hostile(EMPTY, headers={"retries": "many"}, reason="'retries'"),
}


@dataclass
class Target:
    """One worker on one broker, and how to reach it raw and through the client."""

    broker: str
    worker: WorkerProcess
    client: RegistryClient
    broker_url: str
    vhost: str = ""
    sent: list[str] = field(default_factory=list)
    #: A model and one of its records, for the normal read after each hostile message.
    model: str = ""
    record_id: str = ""

    @property
    def queue(self) -> str:
        return str(worker_direct(self.worker.hostname).name)

    def publish(self, hostile: Hostile, task_id: str) -> None:
        headers = {"lang": "py", "task": "records.read", "id": task_id, "root_id": task_id,
                   **hostile.headers}
        with Connection(self.broker_url) as connection:
            connection.Producer().publish(
                hostile.body,
                exchange=DIRECT_EXCHANGE,
                routing_key=self.worker.hostname,
                content_type=hostile.content_type,
                content_encoding=hostile.content_encoding,
                headers={key: value for key, value in headers.items() if value is not None},
                reply_to=self.client.app.thread_oid,
                correlation_id=task_id,
                retry=True,
            )
        self.sent.append(task_id)

    def pending_messages(self) -> int:
        """Messages in the worker's queue, ready or taken and not yet settled."""
        if self.broker == "redis":
            broker = redis.Redis.from_url(self.broker_url)
            try:
                return int(broker.llen(self.queue)) + int(broker.hlen("unacked"))
            finally:
                broker.close()
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "messages"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
        counts = dict(line.split("\t") for line in listed.splitlines() if "\t" in line)
        return int(counts[self.queue])


def _pool_children(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry.name))
    return children


def _call(target: Target, task: str, /, **kwargs: Any) -> Any:
    result = target.client.app.send_task(task, queue=target.queue, kwargs=kwargs)
    return TaskHandle(result, timeout=30, interval=0.005).get()


def _answers_quickly(target: Target) -> float:
    """Seconds the worker takes to answer a normal read (of the record the fixture wrote)."""
    started = time.monotonic()
    record = _call(target, "records.read", model=target.model, record_id=target.record_id,
                   user_id="t", user_role="admin")
    assert record["id"] == target.record_id
    return time.monotonic() - started


def _with_a_record(target: Target) -> Target:
    target.model = f"Hostile{uuid.uuid4().hex[:8]}"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    _call(target, "registry.register_model", name=target.model, schema=schema, user_role="admin")
    created = _call(target, "records.create", model=target.model, data={"n": 1},
                    user_id="t", user_role="admin")
    target.record_id = created["id"]
    _answers_quickly(target)  # warm up
    return target


@pytest.fixture(scope="module", params=["rabbitmq", "redis"])
def target(
    request: pytest.FixtureRequest,
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    broker = request.param
    env = dict(service_env)
    vhost = service_env["DMR_BROKER_URL"].rsplit("/", 1)[1]
    if broker == "redis":
        env["DMR_BROKER_URL"] = REDIS_BROKER
        redis.Redis.from_url(REDIS_BROKER).flushdb()
    log = tmp_path_factory.mktemp("hostile") / f"{broker}.log"
    worker = WorkerProcess(f"hostile-{broker}@dmrtest", "registry,crud", env, log)
    client = RegistryClient.from_settings(Settings.load(environ=env))
    try:
        worker.start()
        yield _with_a_record(Target(broker, worker, client, env["DMR_BROKER_URL"], vhost=vhost))
    finally:
        worker.stop()
        client.close()
        if broker == "redis":
            redis.Redis.from_url(REDIS_BROKER).flushdb()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_message_is_refused_and_the_worker_goes_on(target: Target, case: str) -> None:
    assert target.worker.process is not None
    children = _pool_children(target.worker.process.pid)
    hostile: Hostile = HOSTILE[case]()
    task_id = f"hostile-{case}-{uuid.uuid4().hex[:8]}"

    target.publish(hostile, task_id)

    if hostile.answered:
        with pytest.raises(MessageRefused) as refused:
            AsyncResult(task_id, app=target.client.app).get(timeout=30, interval=0.01)
        assert hostile.reason in refused.value.details["reason"]
    # Sent after the hostile message on the same queue: answered means it was dealt with.
    assert _answers_quickly(target) < ANSWER_SECONDS
    assert target.worker.process.poll() is None
    assert _pool_children(target.worker.process.pid) == children
    log = target.worker.read_log()
    assert "Unrecoverable error" not in log
    if hostile.answered:
        # One line, once: a redelivered message would be refused (and logged) again.
        lines = [line for line in log.splitlines() if task_id in line]
        assert len(lines) == 1 and "Refused task message" in lines[0], lines
    if target.broker == "redis":
        assert _settled(target) == 0


def _settled(target: Target) -> int:
    """Messages still pending once acknowledgements have had a moment: a task's result can
    reach its producer just before the worker's acknowledgement reaches the broker."""
    deadline = time.monotonic() + 10
    while target.pending_messages() and time.monotonic() < deadline:
        time.sleep(0.1)
    return target.pending_messages()


def test_no_hostile_message_stays_in_the_broker(target: Target) -> None:
    assert len(target.sent) >= len(HOSTILE)
    assert _settled(target) == 0
    assert "Refused task message" in target.worker.read_log()


def test_a_message_at_the_depth_limit_reaches_its_task(target: Target) -> None:
    """The limit refuses only what could not be handled: a message exactly as deep as
    `celery.max_message_depth` goes to a pool child, and the task answers it."""
    limit = Settings.load(environ={**os.environ, **target.worker.env}).celery.max_message_depth
    # The body list and the kwargs object are two levels; `data` holds the rest.
    kwargs = {"model": "NoSuchModel", "data": {"deep": _nested_list(limit - 3)},
              "user_id": "t", "user_role": "admin"}
    task_id = f"deep-{uuid.uuid4().hex[:8]}"
    target.publish(Hostile(_json([[], kwargs, {}]), headers={"task": "records.create"}),
                   task_id)
    with pytest.raises(Exception) as raised:
        AsyncResult(task_id, app=target.client.app).get(timeout=30, interval=0.01)
    assert type(raised.value).__name__ == "ModelNotFound"
    assert target.worker.process is not None and target.worker.process.poll() is None


@pytest.mark.parametrize("depth", [60, 100])
def test_a_deeply_nested_schema_is_an_invalid_schema(target: Target, depth: int) -> None:
    """Issue 9 item 5: nested 60 or 100 objects deep, a schema is refused by the registry
    (InvalidSchema naming the limit) or, past the message depth, by the worker; never a
    RecursionError."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(Exception) as raised:
        _call(target, "registry.register_model", name="Deep", schema=schema, user_role="admin")
    assert type(raised.value).__name__ in ("InvalidSchema", "MessageRefused")
    assert "limit" in raised.value.details
    assert _answers_quickly(target) < ANSWER_SECONDS


#: Entries pushed into a queue list with raw Redis commands: none is a kombu message.
RAW_REDIS_ENTRIES = {
    "no envelope": b'{"no": "envelope"}',
    "a list": b"[1, 2]",
    "not json": b"not json",
    "no delivery info": json.dumps({"body": "", "properties": {"delivery_tag": "x"}}).encode(),
}
DROPPED = "that is not a message"


@pytest.mark.parametrize("target", ["redis"], indirect=True)
@pytest.mark.parametrize("case", sorted(RAW_REDIS_ENTRIES))
def test_a_raw_redis_entry_is_dropped_and_the_worker_goes_on(target: Target, case: str) -> None:
    """kombu's Redis channel used to fail decoding such an entry and stop the worker; the
    project's channel (tasks/redis_broker.py) logs one line naming the queue and drops it."""
    assert target.worker.process is not None
    pid = target.worker.process.pid
    dropped_before = _dropped_lines(target)
    broker = redis.Redis.from_url(target.broker_url)
    try:
        broker.lpush(target.queue, RAW_REDIS_ENTRIES[case])
    finally:
        broker.close()

    # Sent after the entry on the same queue: answered means the entry was dealt with.
    assert _answers_quickly(target) < ANSWER_SECONDS
    assert target.worker.process.poll() is None and target.worker.process.pid == pid
    log = target.worker.read_log()
    assert "Unrecoverable error" not in log
    lines = _dropped_lines(target)
    assert len(lines) == len(dropped_before) + 1, lines
    assert "WARNING" in lines[-1] and repr(target.queue) in lines[-1], lines[-1]
    assert _settled(target) == 0


def _dropped_lines(target: Target) -> list[str]:
    return [line for line in target.worker.read_log().splitlines() if DROPPED in line]
