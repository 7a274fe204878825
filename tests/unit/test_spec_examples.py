"""The specification's Usage Examples and Testing sections, with only their imports changed.

Where DESIGN.md resolves a contradiction of the specification, the test says so.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from registry import (
    DynamicModelRegistry,
    FieldPermission,
    PermissionDenied,
    UISchemaGenerator,
    UIWidgetType,
)


class Product(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    description: str = ""
    is_active: bool = True


@pytest.fixture
def registry() -> DynamicModelRegistry:
    return DynamicModelRegistry()


def test_basic_registration_and_masked_read(registry: DynamicModelRegistry) -> None:
    registry.register_model("Product", Product)
    product = registry.create(
        "Product",
        {"name": "Laptop", "price": 999.99, "description": "High-performance laptop"},
        user_id="admin",
        user_role="admin",
    )
    product_view = registry.read("Product", product["id"], user_role="user")
    assert product_view["price"] == 999.99

    # With Field Permissions: exactly the specification's lines, lambda included.
    registry.permissions["Product"].field_permissions["price"] = FieldPermission("price")
    registry.permissions["Product"].field_permissions["price"].read_roles = {"admin", "manager"}
    registry.permissions["Product"].field_permissions["price"].mask_function = lambda x: "***"

    product_view = registry.read("Product", product["id"], user_role="user")
    assert product_view["price"] == "***"
    assert registry.read("Product", product["id"], user_role="admin")["price"] == 999.99


def test_ui_schema_generation(registry: DynamicModelRegistry) -> None:
    registry.register_model("Product", Product)
    ui_schema = registry.ui_schemas["Product"]
    widgets = {name: field.widget.value for name, field in ui_schema.fields.items()}
    assert widgets == {
        "name": "text_input",
        "price": "number",
        "description": "text_area",
        "is_active": "toggle",
    }


def test_model_registration(registry: DynamicModelRegistry) -> None:
    class TestModel(BaseModel):
        name: str
        value: int

    registry.register_model("TestModel", TestModel)
    assert "TestModel" in registry.models


def test_crud_operations(registry: DynamicModelRegistry) -> None:
    class TestModel(BaseModel):
        name: str

    registry.register_model("TestModel", TestModel)

    # DESIGN.md: the seed creates as the default role "user", which its own default
    # permissions forbid. We keep the defaults, so that create is refused ...
    with pytest.raises(PermissionError):
        registry.create("TestModel", {"name": "test"})
    with pytest.raises(PermissionDenied):
        registry.create("TestModel", {"name": "test"})

    # ... and the specification's test passes as admin.
    record = registry.create("TestModel", {"name": "test"}, user_role="admin")
    assert record["name"] == "test"

    fetched = registry.read("TestModel", record["id"])
    assert fetched["name"] == "test"


def test_ui_widget_detection() -> None:
    class UserModel(BaseModel):
        email: str
        password: str
        description: str

    schema = UISchemaGenerator.generate(UserModel)
    assert schema.fields["email"].widget == UIWidgetType.EMAIL
    assert schema.fields["password"].widget == UIWidgetType.PASSWORD
    assert schema.fields["description"].widget == UIWidgetType.TEXT_AREA


def test_each_registry_is_isolated() -> None:
    first, second = DynamicModelRegistry(), DynamicModelRegistry()
    first.register_model("Product", Product)
    assert "Product" in first.models and "Product" not in second.models


def test_a_lambda_mask_cannot_be_stored(registry: DynamicModelRegistry) -> None:
    from registry import InvalidPermissions

    registry.register_model("Product", Product)
    permissions = registry.permissions["Product"]
    permissions.field_permissions["price"] = FieldPermission("price")
    permissions.field_permissions["price"].mask_function = lambda x: "***"
    with pytest.raises(InvalidPermissions, match="unnamed callable"):
        registry.set_permissions("Product", permissions)
