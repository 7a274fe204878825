"""The worker's first look at a task message (workers.message_checks), without a broker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.message import Message

from registry.errors import MessageRefused, PayloadTooLarge
from workers.message_checks import (
    MessageLimits,
    check_task_message,
    clamp_time_limits,
    nesting_depth,
)

LIMITS = MessageLimits(max_bytes=4096, max_depth=16, soft_time_limit=10.0, time_limit=15.0)


def message(body: Any, raw: bytes | None = None, **headers: Any) -> Message:
    return Message(
        body=raw if raw is not None else json.dumps(body).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": "records.read", "id": "t-1", **headers},
        accept=["application/json"],
    )


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_is_counted_without_recursion_and_stops_past_the_limit() -> None:
    assert nesting_depth(5, stop_past=10) == 0
    assert nesting_depth({"a": [1, {"b": []}]}, stop_past=10) == 4
    assert nesting_depth(nested(100_000), stop_past=10) == 11


def reference_depth(value: Any) -> int:
    if isinstance(value, Mapping):
        children: Any = list(value.values())
    elif isinstance(value, list | tuple):
        children = value
    else:
        return 0
    return 1 + max((reference_depth(child) for child in children), default=0)


class Text(str):
    pass


JSON_LIKE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3),
              st.builds(Text, st.text(max_size=3))),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=2), inner, max_size=3)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_LIKE, stop_past=st.integers(0, 6))
def test_depth_matches_its_definition(value: Any, stop_past: int) -> None:
    expected = reference_depth(value)
    assert nesting_depth(value, stop_past) == (
        expected if expected <= stop_past else stop_past + 1)


def test_a_well_formed_message_passes() -> None:
    assert check_task_message(message([[], {"model": "M"}, {"callbacks": None}]), LIMITS) is None
    signature = {"task": "records.read", "args": [], "kwargs": {}, "options": {},
                 "subtask_type": None, "immutable": False}
    embed = {"callbacks": [signature], "errbacks": None, "chain": [signature], "chord": None}
    assert check_task_message(message([[], {}, embed]), LIMITS) is None
    assert check_task_message(message([[], {"data": nested(13)}, None]), LIMITS) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([[], {"data": nested(15)}, {}], "more than 16 levels"),
        ([[], [1, 2], {}], "[args, kwargs, embed]"),
        ([5, {}, {}], "[args, kwargs, embed]"),
        ([1, 2, 3], "[args, kwargs, embed]"),
        ("abc", "[args, kwargs, embed]"),
        ({}, "[args, kwargs, embed]"),
        (None, "[args, kwargs, embed]"),
        (123, "[args, kwargs, embed]"),
        ([[], {}, {"chord": []}], "'chord'"),
        ([[], {}, {"chord": {}}], "'chord'"),
        ([[], {}, {"callbacks": [{"task": 5}]}], "'callbacks'"),
        ([[], {}, {"errbacks": [{"task": "t", "kwargs": []}]}], "'errbacks'"),
        ([[], {}, {"chain": ["records.read"]}], "'chain'"),
    ],
)
def test_a_body_of_the_wrong_shape_or_depth_is_refused(body: Any, reason: str) -> None:
    refused = check_task_message(message(body), LIMITS)
    assert isinstance(refused, MessageRefused)
    assert reason in refused.details["reason"] and refused.details["task_id"] == "t-1"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"[[], {", "not valid JSON"), (b"[" * 50_000 + b"]" * 50_000, "deeper than the parser")],
)
def test_a_body_that_does_not_decode_is_refused(raw: bytes, reason: str) -> None:
    limits = MessageLimits(max_bytes=200_000, max_depth=16, soft_time_limit=1, time_limit=2)
    refused = check_task_message(message(None, raw=raw), limits)
    assert isinstance(refused, MessageRefused) and reason in refused.details["reason"]


def test_a_body_over_the_size_limit_is_refused_before_it_is_decoded() -> None:
    refused = check_task_message(message(None, raw=b"[" * 5000), LIMITS)
    assert isinstance(refused, PayloadTooLarge) and refused.details["limit"] == 4096


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"task": ["x"]}, "'task' header"),
        ({"id": 5}, "'id' header"),
        ({"id": "x" * 256}, "'id' header"),
        ({"retries": True}, "'retries'"),
        ({"eta": 5}, "'eta'"),
        ({"timelimit": [1, 2, 3]}, "'timelimit'"),
        ({"timelimit": [-1, None]}, "'timelimit'"),
        ({"compression": "application/x-bz2"}, "compressed"),
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, Any], reason: str) -> None:
    refused = check_task_message(message([[], {}, {}], **headers), LIMITS)
    assert isinstance(refused, MessageRefused) and reason in refused.details["reason"]


@pytest.mark.parametrize(
    ("given", "clamped"),
    [(None, (15.0, 10.0)), ([None, None], (15.0, 10.0)), ([100, 50], (15.0, 10.0)),
     ([5, 2], (5, 2))],
)
def test_a_producer_may_shorten_time_limits_but_never_lengthen_them(
    given: Any, clamped: tuple[float, float]
) -> None:
    sent = message([[], {}, {}], timelimit=given)
    clamp_time_limits(sent, LIMITS)
    assert tuple(sent.headers["timelimit"]) == clamped
