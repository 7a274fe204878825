"""Registering models and changing permissions need the management permission
(`models.manager_roles`), over the wire always, in-process whenever a role is given."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from registry import DynamicModelRegistry, ModelNotFound, Settings
from registry.errors import PermissionDenied, ValidationFailed
from registry.permissions import Permission
from tests.unit.support import run_task
from workers.app import app

app.loader.import_default_modules()

pytestmark = pytest.mark.usefixtures("results_outside_the_checkout")

SCHEMA = {"title": "Product", "type": "object", "required": ["name"],
          "properties": {"name": {"type": "string"}}}
OPEN = {"roles": {"admin": ["create", "read", "update", "delete", "list"],
                  "user": ["read", "list"]}}


class Product(BaseModel):
    name: str


@pytest.fixture
def registry() -> Iterator[DynamicModelRegistry]:
    settings = Settings().with_overrides(models={"manager_roles": ["owner", "admin"]})
    registry = DynamicModelRegistry(settings=settings)
    app.use_registry(registry)
    yield registry
    app.close_registry()


def test_registering_over_the_wire_needs_a_manager_role(registry: DynamicModelRegistry) -> None:
    with pytest.raises(PermissionDenied, match="'user' cannot register models") as denied:
        run_task("registry.register_model", name="Product", schema=SCHEMA, user_id="u",
                 user_role="user")
    assert denied.value.details["role"] == "user"
    with pytest.raises(ModelNotFound):
        registry.model_info("Product")  # nothing was registered
    entry = run_task("registry.register_model", name="Product", schema=SCHEMA, user_id="o",
                     user_role="owner")
    assert entry["name"] == "Product"


def test_a_registration_without_a_role_is_refused_naming_it(
    registry: DynamicModelRegistry,
) -> None:
    for role in (None, ""):
        with pytest.raises(ValidationFailed, match="user_role"):
            run_task("registry.register_model", name="Product", schema=SCHEMA,
                     **({} if role is None else {"user_role": role}))
    with pytest.raises(ModelNotFound):
        registry.model_info("Product")


def test_changing_permissions_needs_a_manager_role(registry: DynamicModelRegistry) -> None:
    registry.register_model("Product", Product, permissions=OPEN)
    before = registry.model_info("Product").permissions.to_dict()
    opened = {"roles": {"user": ["create", "read", "update", "delete", "list"]}}
    with pytest.raises(PermissionDenied, match="cannot change permissions"):
        run_task("registry.set_permissions", model="Product", permissions=opened,
                 user_id="u", user_role="user")
    with pytest.raises(ValidationFailed, match="user_role"):
        run_task("registry.set_permissions", model="Product", permissions=opened)
    assert registry.model_info("Product").permissions.to_dict() == before
    run_task("registry.set_permissions", model="Product", permissions=opened, user_id="a",
             user_role="admin")
    assert registry.model_info("Product").permissions.can_perform("user", Permission.CREATE)


def test_in_process_code_registers_without_a_role_and_is_checked_with_one() -> None:
    registry = DynamicModelRegistry()  # manager_roles default: admin
    registry.register_model("Product", Product)  # the process's own code
    with pytest.raises(PermissionDenied):
        registry.register_model("Product", Product, user_id="u", user_role="user")
    with pytest.raises(PermissionDenied):
        registry.set_permissions("Product", OPEN, user_role="user")
    registry.set_permissions("Product", OPEN, user_id="a", user_role="admin")
    registry.close()

