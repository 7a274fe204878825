"""Model registration tasks, queue `registry`.

    registry.register_model(name, schema, operation_mode="crud", permissions=None, force=False,
                            user_id, user_role)      (a role in models.manager_roles)
    registry.set_permissions(model, permissions, user_id, user_role)   (likewise)
    registry.get_ui_schema(model, user_role)
    registry.export_form(model, user_role)   (JSON Schema + uiSchema for react-jsonschema-form)
    registry.list_models()
    registry.purge_idempotency_keys()   (beat runs it hourly)
"""

from __future__ import annotations

from typing import Any

from registry.operations import check_role

from .base import RegistryTask
from .operations import registry_task

__all__ = [
    "export_form",
    "get_ui_schema",
    "list_models",
    "purge_idempotency_keys",
    "register_model",
    "set_permissions",
]


@registry_task("registry.register_model")
def register_model(
    self: RegistryTask,
    name: str,
    schema: dict[str, Any],
    operation_mode: str = "crud",
    permissions: dict[str, Any] | None = None,
    force: bool = False,
    user_id: str | None = None,
    user_role: str | None = None,
) -> dict[str, Any]:
    """Register or re-register a model from JSON Schema; returns its stored description.
    The role must have the management permission (`models.manager_roles`)."""
    check_role(user_role)  # over the wire a role is always required
    entry = self.registry.register_schema(
        name, schema, operation_mode, permissions=permissions, force=force,
        user_id=user_id, user_role=user_role,
    )
    return entry.describe()


@registry_task("registry.set_permissions")
def set_permissions(
    self: RegistryTask,
    model: str,
    permissions: dict[str, Any],
    user_id: str | None = None,
    user_role: str | None = None,
) -> dict[str, Any]:
    """Store new permissions; the role must have the management permission."""
    check_role(user_role)
    return self.registry.set_permissions(
        model, permissions, user_id=user_id, user_role=user_role
    ).describe()


@registry_task("registry.get_ui_schema")
def get_ui_schema(self: RegistryTask, model: str, user_role: str) -> dict[str, Any]:
    """The model's UI schema as the role may see it."""
    # In-process, no role means the whole schema; over the wire a role is always required.
    check_role(user_role)
    schema: dict[str, Any] = self.registry.get_ui_schema(model, user_role).model_dump(mode="json")
    return schema


@registry_task("registry.export_form")
def export_form(self: RegistryTask, model: str, user_role: str) -> dict[str, Any]:
    """JSON Schema plus uiSchema for react-jsonschema-form, as the role may see it."""
    check_role(user_role)
    return self.registry.export_form(model, user_role)


@registry_task("registry.list_models")
def list_models(self: RegistryTask) -> list[dict[str, Any]]:
    return self.registry.list_models()


@registry_task("registry.purge_idempotency_keys")
def purge_idempotency_keys(self: RegistryTask) -> dict[str, int]:
    """Drop idempotency keys older than `models.idempotency_retention_days`."""
    return {"purged": self.registry.purge_idempotency_keys()}
