"""The error tree, masks and permission parsing."""

from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

import registry.errors as errors_module
from registry import (
    DynamicModelRegistry,
    FieldPermission,
    InvalidName,
    InvalidPermissions,
    ModelPermissions,
    Permission,
    PermissionDenied,
    RegistryError,
    Settings,
    ValidationFailed,
    register_mask,
)
from registry.errors import ConfigurationError, error_from_dict
from registry.names import validate_field_name, validate_model_name
from registry.permissions import BUILTIN_MASKS, load_masks


def every_error_class() -> list[type[RegistryError]]:
    return [
        value
        for value in vars(errors_module).values()
        if isinstance(value, type) and issubclass(value, RegistryError)
    ]


def test_every_error_is_in_the_docstring_tree_and_documented() -> None:
    tree = errors_module.__doc__ or ""
    for cls in every_error_class():
        assert cls.__name__ in tree
        assert (cls.__doc__ or "").startswith("Raised when") or cls is RegistryError


def test_errors_cross_a_json_boundary_with_class_and_details() -> None:
    original = ValidationFailed(
        "Record for 'Product' is invalid: price: too low.",
        model="Product",
        errors=[{"loc": ["price"], "msg": "too low", "type": "greater_than"}],
    )
    rebuilt = error_from_dict(original.to_dict())
    assert type(rebuilt) is ValidationFailed and rebuilt.errors[0]["loc"] == ["price"]
    assert str(rebuilt) == original.message
    unpickled = pickle.loads(pickle.dumps(original))
    assert type(unpickled) is ValidationFailed and unpickled.details == original.details
    assert type(error_from_dict({"type": "NoSuchError", "message": "m"})) is RegistryError


def test_permission_denied_is_a_builtin_permission_error() -> None:
    assert issubclass(PermissionDenied, PermissionError)


def test_builtin_masks() -> None:
    assert BUILTIN_MASKS["redact"]("secret") == "***"
    assert BUILTIN_MASKS["partial"]("4111111111111111") == "************1111"
    assert BUILTIN_MASKS["partial"]("ab") == "***"
    assert BUILTIN_MASKS["email"]("ada@example.com") == "a***@example.com"
    assert BUILTIN_MASKS["email"]("no at sign") == "***"
    hashed = BUILTIN_MASKS["hash"]("x")
    assert hashed == BUILTIN_MASKS["hash"]("x") != BUILTIN_MASKS["hash"]("y")
    assert hashed.startswith("sha256:") and len(hashed) == len("sha256:") + 16


def test_custom_masks_by_name_and_from_settings() -> None:
    register_mask("first_letter", lambda value: str(value)[:1] + "…")
    rule = FieldPermission("name", read_roles={"admin"}, mask="first_letter")
    assert rule.mask_function is not None and rule.mask_function("Ada") == "A…"
    assert rule.to_dict()["mask"] == "first_letter"
    with pytest.raises(InvalidPermissions, match="'nope' is not registered"):
        FieldPermission("name", mask="nope")
    load_masks({"upper": "string:capwords"})
    upper = FieldPermission("x", mask="upper").mask_function
    assert upper is not None and upper("ab cd") == "Ab Cd"
    with pytest.raises(ConfigurationError, match="models.masks.bad"):
        load_masks({"bad": "no.such.module:function"})


def test_a_registry_loads_masks_named_in_settings() -> None:
    class Person(BaseModel):
        name: str

    settings = Settings().with_overrides(models={"masks": {"capwords": "string:capwords"}})
    registry = DynamicModelRegistry(settings=settings)
    registry.register_model(
        "Person", Person, permissions={"fields": {"name": {"mask": "capwords"}}}
    )
    created = registry.create("Person", {"name": "ada lovelace"}, user_role="admin")
    assert registry.read("Person", created["id"], user_role="user")["name"] == "Ada Lovelace"


def test_permissions_parse_from_json_and_refuse_bad_input() -> None:
    parsed = ModelPermissions.from_dict(
        "Product",
        {"roles": {"clerk": ["create"]}, "fields": {"price": {"read_roles": ["admin"]}}},
    )
    assert parsed.can_perform("clerk", Permission.CREATE)
    assert not parsed.can_perform("admin", Permission.CREATE)  # roles replace the defaults
    assert ModelPermissions.from_dict("P", parsed.to_dict()).to_dict() == parsed.to_dict()
    bad_inputs = [
        {"roles": {"clerk": ["fly"]}},
        {"roles": ["clerk"]},
        {"roles": {"clerk": "create"}},
        {"nope": {}},
        {"fields": {"price": {"colour": "red"}}},
        {"fields": {"price": {"mask": "no-such-mask"}}},
    ]
    for bad in bad_inputs:
        with pytest.raises(InvalidPermissions):
            ModelPermissions.from_dict("Product", bad)


def test_permissions_for_unknown_fields_are_refused() -> None:
    class Product(BaseModel):
        name: str

    registry = DynamicModelRegistry()
    with pytest.raises(InvalidPermissions, match="'colour'"):
        registry.register_model("Product", Product, permissions={"fields": {"colour": {}}})
    assert "Product" not in registry.models


@pytest.mark.parametrize("name", ["", "9lives", "has space", "semi;colon", "é", "x" * 58, None, 5])
def test_bad_model_names(name: object) -> None:
    with pytest.raises(InvalidName):
        validate_model_name(name)


@pytest.mark.parametrize("name", ["id", "ID", "created_at", "model_config", "_private", "a-b"])
def test_bad_field_names(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_field_name("Product", name)


def test_good_names() -> None:
    assert validate_model_name("Product_2") == "Product_2"
    assert validate_field_name("Product", "order") == "order"
