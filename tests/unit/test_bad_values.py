"""Values no column can hold, and arguments of the wrong kind, get typed errors naming what
was wrong, and nothing is written (issue 9, item 5; parts of items 8 and 9)."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from registry import DynamicModelRegistry
from registry.errors import RegistryError, ValidationFailed
from registry.tables import audit_outbox
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")


class Item(BaseModel):
    name: str
    count: int = 0
    weight: float = 1.0
    amount: decimal.Decimal = decimal.Decimal("0")
    seen_at: datetime.datetime | None = None


PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "clerk": ["create", "read", "update", "list"]},
    # The clerk may set the weight but never see it.
    "fields": {"weight": {"read_roles": ["admin"], "write_roles": ["admin", "clerk"],
                          "mask": "redact"}},
}


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    registry = DynamicModelRegistry()
    registry.register_model("Item", Item, permissions=PERMISSIONS)
    app.use_registry(registry)
    yield registry
    app.close_registry()


@pytest.fixture
def item(registry: DynamicModelRegistry) -> dict[str, Any]:
    return registry.create("Item", {"name": "a", "weight": 2.5}, "u", "admin")


def _outbox(registry: DynamicModelRegistry) -> int:
    with registry.database.read() as conn:
        return len(conn.execute(audit_outbox.select()).all())


def _refused(task: str, named: list[str], **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        run_task(task, **kwargs)
    # A filter's errors may name the operator after the field (["count", "eq"]).
    assert [error["loc"][: len(named)] for error in caught.value.errors] == [named], (
        caught.value.errors
    )
    return caught.value


# -- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [[], {}, 5, None])
def test_a_model_that_is_not_a_name_is_refused_on_create_and_read(
    registry: DynamicModelRegistry, model: Any
) -> None:
    _refused("records.create", ["model"], model=model, data={"name": "a"}, user_id="u",
             user_role="admin")
    _refused("records.read", ["model"], model=model, record_id="r", user_id="u",
             user_role="admin")
    assert _outbox(registry) == 0


# -- integers --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2**63, -(2**63) - 1, 10**40])
def test_an_integer_beyond_64_bits_is_refused_naming_the_field(
    registry: DynamicModelRegistry, item: dict[str, Any], count: int
) -> None:
    error = _refused("records.create", ["count"], model="Item",
                     data={"name": "b", "count": count}, user_id="u", user_role="admin")
    assert "'count'" in str(error) and "64-bit" in str(error)
    _refused("records.update", ["count"], model="Item", record_id=item["id"],
             updates={"count": count}, user_id="u", user_role="admin")
    _refused("records.list", ["count"], model="Item", filters={"count": count}, user_id="u",
             user_role="admin")
    _refused("records.list", ["version"], model="Item", filters={"version": count},
             user_id="u", user_role="admin")
    assert _outbox(registry) == 1


def test_the_largest_integers_a_column_holds_are_stored(registry: DynamicModelRegistry) -> None:
    for count in (2**63 - 1, -(2**63)):
        created = registry.create("Item", {"name": "b", "count": count}, "u", "admin")
        assert registry.read("Item", created["id"], "u", "admin")["count"] == count
        page = registry.list("Item", "u", "admin", filters={"count": count})
        assert [found["id"] for found in page["items"]] == [created["id"]]


# -- floats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinities_are_refused_naming_the_field(
    registry: DynamicModelRegistry, item: dict[str, Any], weight: float
) -> None:
    """JSON cannot carry them (the broker's decoder lets them through), so a stored one
    could never be read back by a JSON producer: refused, wherever they appear."""
    error = _refused("records.create", ["data", "weight"], model="Item",
                     data={"name": "b", "weight": weight}, user_id="u", user_role="admin")
    assert "'weight'" in str(error)
    _refused("records.update", ["updates", "weight"], model="Item", record_id=item["id"],
             updates={"weight": weight}, user_id="u", user_role="admin")
    _refused("records.list", ["filters", "weight"], model="Item", filters={"weight": weight},
             user_id="u", user_role="admin")
    assert _outbox(registry) == 1


@pytest.mark.parametrize("spelled", ["NaN", "Infinity", "-inf", "1e400"])
def test_text_that_validates_to_nan_or_infinity_is_refused_too(
    registry: DynamicModelRegistry, spelled: str
) -> None:
    _refused("records.create", ["weight"], model="Item", data={"name": "b", "weight": spelled},
             user_id="u", user_role="admin")
    assert _outbox(registry) == 0


# -- decimals --------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["1e1000000", "-1e1000000", "1e-1000000", "1e1000"])
def test_a_decimal_too_long_to_write_out_is_refused_naming_the_field(
    registry: DynamicModelRegistry, amount: str
) -> None:
    error = _refused("records.create", ["amount"], model="Item",
                     data={"name": "b", "amount": amount}, user_id="u", user_role="admin")
    assert "'amount'" in str(error) and "digits" in str(error)
    _refused("records.list", ["amount"], model="Item", filters={"amount": amount}, user_id="u",
             user_role="admin")
    assert _outbox(registry) == 0


def test_a_long_decimal_within_the_limit_is_stored_exactly(
    registry: DynamicModelRegistry,
) -> None:
    amount = "1" + "0" * 600 + ".5"
    created = registry.create("Item", {"name": "b", "amount": amount}, "u", "admin")
    assert registry.read("Item", created["id"], "u", "admin")["amount"] == amount


# -- datetimes -------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_datetime_outside_the_years_in_utc_is_refused_naming_the_field(
    registry: DynamicModelRegistry, moment: str
) -> None:
    error = _refused("records.create", ["seen_at"], model="Item",
                     data={"name": "b", "seen_at": moment}, user_id="u", user_role="admin")
    assert "'seen_at'" in str(error)
    _refused("records.list", ["seen_at"], model="Item", filters={"seen_at": moment},
             user_id="u", user_role="admin")
    _refused("records.list", ["created_at"], model="Item", filters={"created_at": moment},
             user_id="u", user_role="admin")
    assert _outbox(registry) == 0


def test_the_edges_of_the_years_in_utc_are_stored(registry: DynamicModelRegistry) -> None:
    for moment in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"):
        created = registry.create("Item", {"name": "b", "seen_at": moment}, "u", "admin")
        stored = registry.read("Item", created["id"], "u", "admin")["seen_at"]
        assert datetime.datetime.fromisoformat(stored) == datetime.datetime.fromisoformat(moment)


# -- filters and other arguments -------------------------------------------------------------


def test_a_nul_in_a_filter_value_is_refused_naming_it(registry: DynamicModelRegistry) -> None:
    error = _refused("records.list", ["filters", "name"], model="Item",
                     filters={"name": "a\x00"}, user_id="u", user_role="admin")
    assert "NUL" in str(error)


@pytest.mark.parametrize("filters", [[], "name=a", 5, [["name", "a"]]])
def test_filters_that_are_not_an_object_are_refused(
    registry: DynamicModelRegistry, filters: Any
) -> None:
    _refused("records.list", ["filters"], model="Item", filters=filters, user_id="u",
             user_role="admin")


@pytest.mark.parametrize("model", [[], {}, 5])
def test_audit_stats_refuses_a_model_that_is_not_a_name(
    registry: DynamicModelRegistry, model: Any
) -> None:
    _refused("audit.stats", ["model"], model=model)


def test_audit_history_requires_a_role(registry: DynamicModelRegistry) -> None:
    error = _refused("audit.history", ["user_role"], model="Item")
    assert "user_role is required" in str(error)


@pytest.mark.parametrize("task", ["records.create", "records.list", "audit.history"])
def test_an_empty_user_id_is_refused_like_an_empty_role(
    registry: DynamicModelRegistry, task: str
) -> None:
    arguments: dict[str, Any] = {"model": "Item", "user_role": "admin"}
    if task == "records.create":
        arguments["data"] = {"name": "a"}
    for empty in ("user_id", "user_role"):
        _refused(task, [empty], **{**arguments, "user_id": "u", empty: ""})
    assert _outbox(registry) == 0


def test_an_empty_idempotency_key_is_refused(registry: DynamicModelRegistry) -> None:
    """An empty key would be one key shared by every producer that sends one."""
    _refused("records.create", ["idempotency_key"], model="Item", data={"name": "a"},
             user_id="u", user_role="admin", idempotency_key="")


def test_in_process_calls_get_the_same_typed_errors(registry: DynamicModelRegistry) -> None:
    with pytest.raises(ValidationFailed):
        registry.create("Item", {"name": "a", "count": 2**64}, "u", "admin")
    with pytest.raises(ValidationFailed):
        registry.list("Item", "u", "admin", filters=[])  # type: ignore[arg-type]
    with pytest.raises(RegistryError):
        registry.read([], "r", "u", "admin")  # type: ignore[arg-type]


# -- an update that changes nothing ----------------------------------------------------------


def test_a_role_that_cannot_read_a_field_learns_nothing_from_writing_a_guess(
    registry: DynamicModelRegistry, item: dict[str, Any]
) -> None:
    """The clerk writes weight but reads it as '***'. A right guess (2.5) and a wrong one
    (3.0) must look alike: each is a new version with an audit entry."""
    right = registry.update("Item", item["id"], {"weight": 2.5}, "c", "clerk")
    assert right["version"] == 2 and right["weight"] == "***"
    wrong = registry.update("Item", item["id"], {"weight": 3.0}, "c", "clerk")
    assert wrong["version"] == 3 and wrong["weight"] == "***"
    assert right.keys() == wrong.keys()
    history = registry.history("Item", item["id"], user_role="clerk")
    assert [entry.changes for entry in history[1:]] == [
        {"weight": {"old": "***", "new": "***"}},
        {"weight": {"old": "***", "new": "***"}},
    ]
    assert registry.verify_audit()["ok"] is True


def test_an_update_that_changes_nothing_the_role_can_see_is_still_not_written(
    registry: DynamicModelRegistry, item: dict[str, Any]
) -> None:
    same = registry.update("Item", item["id"], {"name": "a", "weight": 2.5}, "u", "admin")
    assert same["version"] == 1
    assert _outbox(registry) == 1
