"""Role permissions per model, field read and write roles, and masks.

How a field value reaches a role (DESIGN.md, "Masks"):
- a role in `unmasked_roles` (default `admin`) sees the value;
- a role in the field's `read_roles` sees the masked value if a mask is set, else the value;
- any other role sees the masked value if a mask is set, else the field is absent.

One rule decides: `ModelPermissions.field_visibility`. Every path that gives a role values
(`view`, `view_changes`, `readable_fields`, `plainly_readable`, UI schemas) asks it; a field
rule alone has no masking method, because it cannot know its model's unmasked roles (the
seed's `FieldPermission.apply_mask` was a second rule that ignored them and `read_roles`).

A mask travels between processes by name. Built-ins: `redact`, `partial`, `email`, `hash`;
`register_mask` adds more. A callable assigned to `mask_function` works in this process only,
and storing such permissions raises `InvalidPermissions`.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Container, Iterable, Mapping
from enum import Enum
from typing import Any

from .errors import ConfigurationError, InvalidPermissions, PermissionDenied
from .settings import PermissionDefaults

__all__ = [
    "BUILTIN_MASKS",
    "FieldPermission",
    "MaskFunction",
    "ModelPermissions",
    "Permission",
    "load_masks",
    "mask_function_for",
    "register_mask",
    "require_manager",
]

MaskFunction = Callable[[Any], Any]


class Permission(Enum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"


def _redact(value: Any) -> str:
    return "***"


def _partial(value: Any) -> str:
    # Keep the last four characters, as card and account numbers are usually shown.
    text = str(value)
    keep = text[-4:] if len(text) > 4 else ""
    return "*" * max(len(text) - len(keep), 3) + keep


def _email(value: Any) -> str:
    local, at, domain = str(value).partition("@")
    if not at:
        return _redact(value)
    return f"{local[:1]}***@{domain}"


def _hash(value: Any) -> str:
    # Equal values give equal tokens, so masked columns still group and join.
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:16]


BUILTIN_MASKS: dict[str, MaskFunction] = {
    "redact": _redact,
    "partial": _partial,
    "email": _email,
    "hash": _hash,
}
_masks: dict[str, MaskFunction] = dict(BUILTIN_MASKS)


def register_mask(name: str, function: MaskFunction) -> None:
    """Make a mask available by name in this process (register it in every worker too)."""
    if not name.isidentifier():
        raise InvalidPermissions(f"Mask name {name!r} is not an identifier.")
    _masks[name] = function


def load_masks(paths: Mapping[str, str]) -> None:
    """Register masks named in settings as `module:function`; raises `ConfigurationError`."""
    for name, path in paths.items():
        module_name, _, attribute = path.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError):
            raise ConfigurationError(
                f"Setting 'models.masks.{name}' names {path!r}, which cannot be imported; "
                "expected 'package.module:function'.",
                key=f"models.masks.{name}",
            ) from None
        if not callable(function):
            raise ConfigurationError(f"Setting 'models.masks.{name}': {path!r} is not callable.")
        register_mask(name, function)


def mask_function_for(name: str) -> MaskFunction:
    """The mask registered as `name`; raises `InvalidPermissions` when there is none."""
    try:
        return _masks[name]
    except KeyError:
        known = ", ".join(sorted(_masks))
        raise InvalidPermissions(
            f"Mask {name!r} is not registered; known masks: {known}.", mask=name
        ) from None


def require_manager(user_role: str | None, manager_roles: Iterable[str], action: str) -> None:
    """Raises `PermissionDenied` unless the role has the management permission: registering
    models, changing permissions, defining projections (`models.manager_roles`).

    None is the process's own code calling in-process, as the specification's examples do;
    every task passes the role its producer claims, so none reaches here over the wire.
    """
    allowed = set(manager_roles)
    if user_role is None or user_role in allowed:
        return
    raise PermissionDenied(
        f"Role {user_role!r} cannot {action}: that needs the management permission "
        f"(roles: {', '.join(sorted(allowed))}).",
        role=user_role,
        operation=action,
    )


class FieldPermission:
    """Who may read and write one field, and how its value is masked."""

    def __init__(
        self,
        field_name: str,
        read_roles: Iterable[str] = ("admin", "user"),
        write_roles: Iterable[str] = ("admin",),
        mask: str | None = None,
    ) -> None:
        self.field_name = field_name
        self.read_roles: set[str] = set(read_roles)
        self.write_roles: set[str] = set(write_roles)
        self.mask_function: MaskFunction | None = None
        self.mask = mask

    @property
    def mask(self) -> str | None:
        """The mask's registered name, or None when unmasked or masked by an in-process callable."""
        return self._mask_name

    @mask.setter
    def mask(self, name: str | None) -> None:
        self.mask_function = mask_function_for(name) if name is not None else None
        self._mask_name = name

    def can_read(self, user_role: str) -> bool:
        return user_role in self.read_roles

    def can_write(self, user_role: str) -> bool:
        return user_role in self.write_roles

    def to_dict(self) -> dict[str, Any]:
        """JSON form; raises `InvalidPermissions` for a mask that has no registered name."""
        if self.mask_function is not None and self._mask_name is None:
            raise InvalidPermissions(
                f"Field {self.field_name!r} is masked by an unnamed callable, which cannot be "
                "stored or sent to workers; register it with register_mask() and set "
                "FieldPermission.mask to its name.",
                field=self.field_name,
            )
        data: dict[str, Any] = {
            "read_roles": sorted(self.read_roles),
            "write_roles": sorted(self.write_roles),
        }
        if self._mask_name is not None:
            data["mask"] = self._mask_name
        return data

    @classmethod
    def from_dict(cls, field_name: str, data: Mapping[str, Any]) -> FieldPermission:
        unknown = set(data) - {"read_roles", "write_roles", "mask"}
        if unknown:
            raise InvalidPermissions(
                f"Permissions of field {field_name!r} have unknown keys: {sorted(unknown)}.",
                field=field_name,
            )
        return cls(
            field_name,
            read_roles=_role_list(data.get("read_roles", ["admin", "user"]), field_name),
            write_roles=_role_list(data.get("write_roles", ["admin"]), field_name),
            mask=data.get("mask"),
        )


class ModelPermissions:
    """Which roles may perform which operations on one model, and its field permissions."""

    def __init__(
        self,
        model_name: str,
        defaults: PermissionDefaults | None = None,
        unmasked_roles: Iterable[str] = ("admin",),
    ) -> None:
        defaults = defaults or PermissionDefaults()
        self.model_name = model_name
        self.role_permissions: dict[str, set[Permission]] = {
            "admin": {Permission(op) for op in defaults.default_admin_permissions},
            "user": {Permission(op) for op in defaults.default_user_permissions},
        }
        self.field_permissions: dict[str, FieldPermission] = {}
        self.unmasked_roles: set[str] = set(unmasked_roles)

    def copy(self) -> ModelPermissions:
        """An independent copy (masks, callables included, are shared: they are functions)."""
        copied = ModelPermissions(self.model_name, unmasked_roles=self.unmasked_roles)
        copied.role_permissions = {role: set(ops) for role, ops in self.role_permissions.items()}
        for field, rule in self.field_permissions.items():
            twin = FieldPermission(field, rule.read_roles, rule.write_roles, rule.mask)
            twin.mask_function = rule.mask_function
            copied.field_permissions[field] = twin
        return copied

    def can_perform(self, user_role: str, permission: Permission) -> bool:
        return permission in self.role_permissions.get(user_role, set())

    def require(self, user_role: str, permission: Permission) -> None:
        """Raises `PermissionDenied` unless the role may perform the operation."""
        if not self.can_perform(user_role, permission):
            raise PermissionDenied(
                f"Role {user_role!r} cannot {permission.value} {self.model_name!r}.",
                model=self.model_name,
                role=user_role,
                operation=permission.value,
            )

    def require_writable(self, user_role: str, fields: Iterable[str]) -> None:
        """Raises `PermissionDenied` naming the first field the role may not write."""
        for field in sorted(fields):
            rule = self.field_permissions.get(field)
            if rule is not None and not rule.can_write(user_role):
                raise PermissionDenied(
                    f"Role {user_role!r} cannot write field {field!r} of {self.model_name!r}.",
                    model=self.model_name,
                    role=user_role,
                    field=field,
                )

    def field_visibility(
        self, field: str, user_role: str, known: Container[str] | None = None
    ) -> MaskFunction | bool:
        """How the role sees a field: True (plainly), False (not at all), or a mask to apply.

        With `known` (the fields the model has now, plus the system columns), a field outside
        it, one that a schema change removed, is seen by unmasked roles only: its rule went
        with it, and history must not fall back to showing its old values to everyone."""
        if user_role in self.unmasked_roles:
            return True
        if known is not None and field not in known:
            return False
        rule = self.field_permissions.get(field)
        if rule is None:
            return True
        if rule.mask_function is not None:
            return rule.mask_function
        return rule.can_read(user_role)

    def view(
        self, record: Mapping[str, Any], user_role: str, known: Container[str] | None = None
    ) -> dict[str, Any]:
        """The record as the role may see it: masked values masked, unreadable fields absent."""
        visible: dict[str, Any] = {}
        for field, value in record.items():
            how = self.field_visibility(field, user_role, known)
            if how is True:
                visible[field] = value
            elif callable(how):
                visible[field] = how(value) if value is not None else None
        return visible

    def view_changes(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        user_role: str,
        known: Container[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """An audit entry's `{field: {old, new}}` as the role may see it."""
        visible: dict[str, dict[str, Any]] = {}
        for field, change in changes.items():
            how = self.field_visibility(field, user_role, known)
            if how is True:
                visible[field] = dict(change)
            elif callable(how):
                visible[field] = {
                    key: (how(value) if value is not None else None)
                    for key, value in change.items()
                }
        return visible

    def readable_fields(self, user_role: str, fields: Iterable[str]) -> set[str]:
        """Fields whose value, masked or not, the role receives."""
        return {field for field in fields if self.field_visibility(field, user_role) is not False}

    def plainly_readable(self, user_role: str, field: str) -> bool:
        return self.field_visibility(field, user_role) is True

    def to_dict(self) -> dict[str, Any]:
        return {
            "roles": {
                role: sorted(p.value for p in perms)
                for role, perms in sorted(self.role_permissions.items())
            },
            "fields": {
                name: rule.to_dict() for name, rule in sorted(self.field_permissions.items())
            },
            "unmasked_roles": sorted(self.unmasked_roles),
        }

    @classmethod
    def from_dict(
        cls,
        model_name: str,
        data: Mapping[str, Any] | None,
        defaults: PermissionDefaults | None = None,
        unmasked_roles: Iterable[str] = ("admin",),
    ) -> ModelPermissions:
        """Build from the JSON form; missing parts keep the defaults.

        Raises `InvalidPermissions`."""
        permissions = cls(model_name, defaults, unmasked_roles)
        if not data:
            return permissions
        if not isinstance(data, Mapping):
            raise InvalidPermissions(f"Permissions of {model_name!r} must be an object.")
        unknown = set(data) - {"roles", "fields", "unmasked_roles"}
        if unknown:
            raise InvalidPermissions(
                f"Permissions of {model_name!r} have unknown keys: {sorted(unknown)}.",
                model=model_name,
            )
        if "roles" in data:
            permissions.role_permissions = _parse_roles(model_name, data["roles"])
        for field, rule in dict(data.get("fields") or {}).items():
            permissions.field_permissions[field] = FieldPermission.from_dict(field, rule)
        if "unmasked_roles" in data:
            permissions.unmasked_roles = set(_role_list(data["unmasked_roles"], model_name))
        return permissions


def _parse_roles(model_name: str, roles: Any) -> dict[str, set[Permission]]:
    if not isinstance(roles, Mapping):
        raise InvalidPermissions(f"'roles' of {model_name!r} must map role names to operations.")
    parsed: dict[str, set[Permission]] = {}
    for role, operations in roles.items():
        names = _role_list(operations, model_name)
        try:
            parsed[str(role)] = {Permission(op) for op in names}
        except ValueError:
            valid = ", ".join(p.value for p in Permission)
            raise InvalidPermissions(
                f"Role {role!r} of {model_name!r} names an unknown operation in "
                f"{operations!r}; valid operations: {valid}.",
                model=model_name,
                role=role,
            ) from None
    return parsed


def _role_list(value: Any, owner: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidPermissions(f"Permissions of {owner!r} expect a list of names, not {value!r}.")
    return [str(item) for item in value]
