"""The Redis channel's check of a queue entry: a kombu envelope passes unchanged, anything
else is `NotAnEnvelope` naming what is wrong (tasks/redis_broker.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kombu import Connection
from kombu.transport.virtual import Channel as VirtualChannel

from tasks.redis_broker import NotAnEnvelope, read_envelope

CODECS = VirtualChannel.codecs


def _kombu_envelope() -> dict[str, Any]:
    """An envelope exactly as kombu's virtual channels write it (the Redis one included)."""
    with Connection("memory://") as connection:
        channel = connection.channel()
        connection.Producer(channel).publish(
            [[], {"n": 1}, {}], routing_key="q", declare=[connection.SimpleQueue("q").queue],
            headers={"task": "records.read", "id": "t1"}, serializer="json",
        )
        envelope: dict[str, Any] = channel._get("q")
        return envelope


def test_a_kombu_envelope_passes_unchanged() -> None:
    envelope = _kombu_envelope()
    assert envelope["properties"]["body_encoding"] == "base64"
    assert read_envelope(json.dumps(envelope).encode(), CODECS) == envelope
    assert read_envelope(json.dumps(envelope), CODECS) == envelope


def _changed(change: Any) -> bytes:
    envelope = _kombu_envelope()
    change(envelope)
    return json.dumps(envelope).encode()


MALFORMED: dict[str, tuple[Any, str]] = {
    "not json": (b"not json", "not JSON"),
    "not utf-8": (b"\xff\xfe", "not JSON"),
    "a list": (b"[1, 2]", "a JSON list, not an object"),
    "a string": (b'"abc"', "a JSON str, not an object"),
    "null": (b"null", "a JSON NoneType, not an object"),
    "no envelope": (b'{"no": "envelope"}', "no properties"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    "properties a list": (lambda: _changed(lambda e: e.update(properties=[])),
                          "properties is a list, not a dict"),
    "no delivery_info": (lambda: _changed(lambda e: e["properties"].pop("delivery_info")),
                         "no properties.delivery_info"),
    "routing key a number": (
        lambda: _changed(lambda e: e["properties"]["delivery_info"].update(routing_key=5)),
        "properties.delivery_info.routing_key is a int"),
    "no delivery tag": (lambda: _changed(lambda e: e["properties"].pop("delivery_tag")),
                        "no properties.delivery_tag"),
    "headers a list": (lambda: _changed(lambda e: e.update(headers=[1])),
                       "headers is a list, not a dict"),
    "content type a number": (lambda: _changed(lambda e: e.update({"content-type": 1})),
                              "content-type is a int"),
    "no body": (lambda: _changed(lambda e: e.pop("body")), "no body"),
    "body an object": (lambda: _changed(lambda e: e.update(body={})), "body is a dict"),
    "unknown encoding": (
        lambda: _changed(lambda e: e["properties"].update(body_encoding="rot13")),
        "unknown properties.body_encoding 'rot13'"),
    "bad base64": (lambda: _changed(lambda e: e.update(body="abc")), "body is not base64"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_an_entry_that_is_not_an_envelope_is_named(case: str) -> None:
    raw, reason = MALFORMED[case]
    with pytest.raises(NotAnEnvelope) as refused:
        read_envelope(raw() if callable(raw) else raw, CODECS)
    assert reason in str(refused.value)


def test_an_unencoded_body_and_absent_optional_fields_pass() -> None:
    envelope = _kombu_envelope()
    envelope["properties"].pop("body_encoding")
    envelope["body"] = base64.b64decode(envelope["body"]).decode()
    for key in ("headers", "content-type", "content-encoding"):
        envelope.pop(key)
    assert read_envelope(json.dumps(envelope), CODECS) == envelope
