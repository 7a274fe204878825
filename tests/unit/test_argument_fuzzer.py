"""Every task of the wire contract answers an argument of the wrong type, or a value no
column can hold, with a typed error (a `RegistryError`), run in-process as a worker runs it.

Each example takes one task, a valid call of it, and replaces one argument with a value of a
wrong kind for that argument (or adds an argument the task does not take). The task must fail,
and fail with one of the registry's errors: never a `TypeError`, a database error or success.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registry import DynamicModelRegistry
from registry.errors import RegistryError
from tasks.names import queue_for
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")


class Product(BaseModel):
    name: str
    price: float
    stock: int = 0


TEXT = {"model", "name", "record_id", "user_id", "user_role", "idempotency_key", "actor",
        "order_by", "operation_mode", "after", "count", "job_id", "reason"}
OBJECT = {"data", "updates", "filters", "schema", "permissions", "definition", "command",
          "query", "source", "field_map", "options"}
WHOLE = {"expected_version", "page", "page_size", "after_position", "limit", "min_position",
         "chunk_no", "first_row", "total", "chunk_count"}
LIST = {"items", "rows"}
BOOLEAN = {"force", "dry_run"}
TIME = {"since", "until", "at"}
NUMBER = {"wait_seconds", "older_than_days"}

_lists = st.lists(st.integers(), max_size=2)
_dicts = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
#: Values that JSON or the database cannot hold, anywhere in an object.
_unstorable = st.sampled_from([float("nan"), float("inf"), float("-inf"), "a\x00b"])
WRONG: dict[frozenset[str], st.SearchStrategy[Any]] = {
    frozenset(TEXT): st.one_of(
        st.integers(), st.floats(), st.booleans(), _lists, _dicts,
        st.text(max_size=5).map(lambda text: text + "\x00"),
    ),
    frozenset(OBJECT): st.one_of(
        st.text(max_size=5), st.integers(), st.floats(), st.booleans(), _lists,
        st.dictionaries(st.sampled_from(["name", "price", "stock"]), _unstorable, min_size=1),
    ),
    frozenset(WHOLE): st.one_of(
        st.text(max_size=5), st.floats(), st.booleans(), _lists, _dicts,
        st.integers(min_value=2**63, max_value=2**70),
    ),
    frozenset(LIST): st.one_of(st.text(max_size=5), st.integers(), st.booleans(), _dicts),
    frozenset(BOOLEAN): st.one_of(st.text(max_size=5), st.integers(), _lists, _dicts, st.none()),
    frozenset(TIME): st.one_of(
        st.integers(), st.booleans(), _lists, _dicts,
        st.text(alphabet="abcxyz", min_size=1, max_size=5),
        st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]),
    ),
    frozenset(NUMBER): st.one_of(st.text(max_size=5), st.booleans(), _lists, _dicts,
                                 st.sampled_from([float("nan"), float("inf")])),
}


def wrong_values(argument: str) -> st.SearchStrategy[Any]:
    for names, strategy in WRONG.items():
        if argument in names:
            return strategy
    raise AssertionError(f"The fuzzer does not know what kind argument {argument!r} is.")


def contract_tasks() -> list[str]:
    names = []
    for name in sorted(app.tasks):
        try:
            queue_for(name)
        except KeyError:
            continue  # Celery's own tasks
        names.append(name)
    return names


def valid_calls(record_id: str) -> dict[str, dict[str, Any]]:
    """One valid call of each task with arguments (tasks without any take none)."""
    caller = {"user_id": "u", "user_role": "admin"}
    return {
        "records.create": {"model": "Product", "data": {"name": "a", "price": 1.0}, **caller},
        "records.read": {"model": "Product", "record_id": record_id, **caller},
        "records.update": {"model": "Product", "record_id": record_id,
                           "updates": {"price": 2.0}, **caller},
        "records.delete": {"model": "Product", "record_id": record_id, **caller},
        "records.list": {"model": "Product", "filters": {"name": "a"}, "order_by": "name",
                         "page": 1, "page_size": 10, **caller},
        "records.history": {"model": "Product", "record_id": record_id, "since": None,
                            **caller},
        "records.as_of": {"model": "Product", "record_id": record_id,
                          "at": "2030-01-01T00:00:00Z", **caller},
        "audit.history": {"model": "Product", "record_id": record_id,
                          "since": "2020-01-01T00:00:00Z", "until": "2040-01-01T00:00:00Z",
                          "actor": "u", **caller},
        "audit.stats": {"model": "Product"},
        "audit.compact": {"force": True},
        "registry.register_model": {"name": "Other", "schema": {
            "type": "object", "properties": {"x": {"type": "integer"}}}, "operation_mode": "crud",
            "permissions": None, "force": False},
        "registry.set_permissions": {"model": "Product", "permissions": {}},
        "registry.get_ui_schema": {"model": "Product", "user_role": "admin"},
        "registry.export_form": {"model": "Product", "user_role": "admin"},
        "cqrs.execute_command": {"command": {"type": "create", "model": "Order",
                                             "data": {"name": "a", "price": 1.0}}, **caller},
        "cqrs.execute_query": {"query": {"type": "list", "model": "Order"}, **caller,
                               "min_position": 0, "wait_seconds": 0.0},
        "cqrs.define_projection": {"definition": {
            "name": "by_name", "model": "Order", "group_by": ["name"],
            "measures": {"orders": ["count"]}}, "force": False, **caller},
        "cqrs.events": {"after_position": 0, "limit": 10, "model": "Order", **caller},
        "cqrs.rebuild_projection": {"name": "records:Order"},
        "imports.cleanup": {"older_than_days": 30, "dry_run": True, **caller},
    }


#: Tasks fuzzed from an empty call (each wrong value alone): not yet given a valid call here.
WITHOUT_A_VALID_CALL = {
    "imports.cancel", "imports.chunk", "imports.rejects", "imports.seal", "imports.start",
    "imports.status", "imports.marks", "imports.job", "records.create_many",
}


@pytest.fixture(scope="module")
def calls() -> Iterator[dict[str, dict[str, Any]]]:
    registry = DynamicModelRegistry()
    registry.register_model("Product", Product)
    registry.register_model("Order", Product, "hybrid")
    app.use_registry(registry)
    record = registry.create("Product", {"name": "a", "price": 1.0}, "u", "admin")
    yield valid_calls(record["id"])
    app.close_registry()


def test_every_task_with_arguments_has_a_valid_call(calls: dict[str, dict[str, Any]]) -> None:
    """The fuzzer covers the whole contract: a new task must be added to it."""
    with_arguments = {
        name for name in contract_tasks()
        if inspect.signature(app.tasks[name].run).parameters
    }
    assert with_arguments <= set(calls) | WITHOUT_A_VALID_CALL
    for name in with_arguments & set(calls):
        parameters = set(inspect.signature(app.tasks[name].run).parameters)
        assert set(calls[name]) <= parameters, name


@st.composite
def wrong_calls(draw: st.DrawFn, calls: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(contract_tasks()))
    parameters = list(inspect.signature(app.tasks[name].run).parameters)
    kwargs = dict(calls.get(name, {}))
    if not parameters or draw(st.integers(0, 9)) == 0:
        kwargs["not_an_argument"] = draw(st.integers())
        return name, kwargs
    argument = draw(st.sampled_from(parameters))
    kwargs[argument] = draw(wrong_values(argument))
    return name, kwargs


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_wrong_argument_gets_a_typed_error(
    calls: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    name, kwargs = data.draw(wrong_calls(calls))
    result = app.tasks[name].apply(kwargs=kwargs)
    assert result.failed(), f"{name} accepted {kwargs!r}"
    assert isinstance(result.result, RegistryError), f"{name}({kwargs!r}) -> {result.result!r}"


def test_the_valid_calls_are_valid(calls: dict[str, dict[str, Any]]) -> None:
    """Without this, a fuzzed call could fail for the valid arguments around the wrong one."""
    for name in ("records.read", "records.list", "records.history", "audit.history",
                 "records.as_of", "audit.stats", "registry.get_ui_schema", "cqrs.events",
                 "cqrs.execute_query", "registry.export_form", "imports.cleanup"):
        result = app.tasks[name].apply(kwargs=calls[name])
        assert not result.failed(), (name, result.result)
