"""UI schemas: widget detection, field attributes, overrides, role views and the rjsf export."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
from typing import Annotated, Any, Literal

import annotated_types
import pytest
from pydantic import AnyUrl, BaseModel, EmailStr, Field, HttpUrl, SecretStr

from registry import ui
from registry.errors import InvalidSchema
from registry.permissions import FieldPermission, ModelPermissions, Permission
from registry.settings import UISettings
from registry.ui import UIFieldSchema, UISchema, UISchemaGenerator, UIWidgetType, to_rjsf

W = UIWidgetType

# From rjsf's documentation ("Widgets" and "uiSchema"): the names its registry resolves for
# `ui:widget`, and the per-field uiSchema keys this export may write.
RJSF_WIDGETS = {
    "text", "textarea", "password", "color", "email", "uri", "data-url", "date", "datetime",
    "date-time", "alt-date", "alt-datetime", "time", "updown", "range", "radio", "select",
    "checkbox", "checkboxes", "hidden", "file",
}  # fmt: skip
RJSF_FIELD_KEYS = {
    "ui:widget", "ui:title", "ui:placeholder", "ui:help", "ui:readonly", "ui:options",
}  # fmt: skip


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str


class Supplier(BaseModel):
    name: str


class Everything(BaseModel):
    title: str
    notes: str = ""
    password: str
    email: str
    homepage_url: str = ""
    quantity: int = 0
    rating: int = Field(default=3, ge=1, le=5)
    born_on: datetime.date | None = None
    color: Color = Color.RED
    tags: list[Color] = []
    enabled: bool = False
    address: Address | None = None


class Product(BaseModel):
    """The seed's example model."""

    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    description: str = ""
    is_active: bool = True


def widgets(model: type[BaseModel]) -> dict[str, UIWidgetType]:
    schema = UISchemaGenerator.generate(model)
    return {name: field.widget for name, field in schema.fields.items()}


def field(model: type[BaseModel], name: str, **kwargs: Any) -> UIFieldSchema:
    return UISchemaGenerator.generate(model, **kwargs).fields[name]


def test_all_is_explicit_and_complete() -> None:
    assert sorted(ui.__all__) == [
        "UIFieldSchema", "UISchema", "UISchemaGenerator", "UIWidgetType", "to_rjsf"
    ]  # fmt: skip
    assert all(hasattr(ui, name) for name in ui.__all__)


def test_widget_types_are_the_seeds_twelve() -> None:
    assert {widget.name: widget.value for widget in UIWidgetType} == {
        "TEXT_INPUT": "text_input", "TEXT_AREA": "text_area", "PASSWORD": "password",
        "EMAIL": "email", "URL": "url", "NUMBER": "number", "SLIDER": "slider",
        "DATE_PICKER": "date_picker", "SELECT": "select", "MULTI_SELECT": "multi_select",
        "TOGGLE": "toggle", "JSON_EDITOR": "json_editor",
    }  # fmt: skip


# --- Widget detection -----------------------------------------------------------------------


def test_every_widget_is_detected() -> None:
    assert widgets(Everything) == {
        "title": W.TEXT_INPUT,
        "notes": W.TEXT_AREA,
        "password": W.PASSWORD,
        "email": W.EMAIL,
        "homepage_url": W.URL,
        "quantity": W.NUMBER,
        "rating": W.SLIDER,
        "born_on": W.DATE_PICKER,
        "color": W.SELECT,
        "tags": W.MULTI_SELECT,
        "enabled": W.TOGGLE,
        "address": W.JSON_EDITOR,
    }
    assert set(widgets(Everything).values()) == set(UIWidgetType)


def test_the_seeds_widget_detection_test() -> None:
    class UserModel(BaseModel):
        email: str
        password: str
        description: str

    schema = UISchemaGenerator.generate(UserModel)
    assert schema.fields["email"].widget == UIWidgetType.EMAIL
    assert schema.fields["password"].widget == UIWidgetType.PASSWORD
    assert schema.fields["description"].widget == UIWidgetType.TEXT_AREA


def test_the_seeds_product_example() -> None:
    schema = UISchemaGenerator.generate(Product)
    shown = [f"{name}: {spec.widget.value}" for name, spec in schema.fields.items()]
    assert shown == [
        "name: text_input",
        "price: number",
        "description: text_area",
        "is_active: toggle",
    ]


def test_name_rules_win_over_types() -> None:
    class Contact(BaseModel):
        contact_email: str
        website_link: str
        admin_password: EmailStr
        password: SecretStr
        email_notes: HttpUrl
        short_description: str = Field(max_length=20)

    assert widgets(Contact) == {
        "contact_email": W.EMAIL,
        "website_link": W.URL,
        "admin_password": W.PASSWORD,
        "password": W.PASSWORD,
        "email_notes": W.EMAIL,
        "short_description": W.TEXT_AREA,
    }


def test_name_rules_apply_only_to_text() -> None:
    class Flags(BaseModel):
        email_verified: bool
        link_count: int
        notes: list[str]
        url_kind: Color

    assert widgets(Flags) == {
        "email_verified": W.TOGGLE,
        "link_count": W.NUMBER,
        "notes": W.JSON_EDITOR,
        "url_kind": W.SELECT,
    }


def test_string_types() -> None:
    class Strings(BaseModel):
        a: EmailStr
        b: AnyUrl
        c: HttpUrl | None = None
        d: str = Field(max_length=256)
        e: str = Field(max_length=255)
        f: SecretStr
        g: datetime.time
        h: int | str

    assert widgets(Strings) == {
        "a": W.EMAIL,
        "b": W.URL,
        "c": W.URL,
        "d": W.TEXT_AREA,
        "e": W.TEXT_INPUT,
        "f": W.PASSWORD,
        "g": W.TEXT_INPUT,
        "h": W.TEXT_INPUT,
    }


@pytest.mark.parametrize(
    "annotation",
    [
        Annotated[int, Field(ge=0, le=10)],
        Annotated[float, Field(gt=0, lt=1)],
        Annotated[int, Field(gt=0, le=10)],
        Annotated[int, annotated_types.Ge(0), annotated_types.Le(5)],
        Annotated[int, annotated_types.Interval(gt=0, lt=5)],
        Annotated[decimal.Decimal, Field(ge=0, le=1)],
    ],
)
def test_a_number_with_both_bounds_is_a_slider(annotation: Any) -> None:
    class Bounded(BaseModel):
        value: annotation

    assert widgets(Bounded) == {"value": W.SLIDER}


def test_slider_from_field_defaults() -> None:
    class Bounded(BaseModel):
        volume: int = Field(default=5, ge=0, le=10)

    assert widgets(Bounded) == {"volume": W.SLIDER}


@pytest.mark.parametrize(
    "annotation",
    [
        int,
        float,
        decimal.Decimal,
        Annotated[int, Field(ge=0)],
        Annotated[float, Field(gt=0)],
        Annotated[int, Field(lt=10)],
        Annotated[int, Field(multiple_of=5)],
    ],
)
def test_a_number_without_both_bounds_is_a_number(annotation: Any) -> None:
    class Open(BaseModel):
        value: annotation

    assert widgets(Open) == {"value": W.NUMBER}


def test_dates() -> None:
    class Dates(BaseModel):
        day: datetime.date
        maybe_day: datetime.date | None = None
        at: datetime.datetime

    assert widgets(Dates) == {"day": W.DATE_PICKER, "maybe_day": W.DATE_PICKER, "at": W.DATE_PICKER}


def test_choices() -> None:
    class Choices(BaseModel):
        color: Color
        size: Literal["s", "m", "l"]
        colors: list[Color]
        sizes: list[Literal["s", "m"]]
        color_set: set[Color]
        maybe: Color | None = None

    schema = UISchemaGenerator.generate(Choices)
    assert {name: f.widget for name, f in schema.fields.items()} == {
        "color": W.SELECT,
        "size": W.SELECT,
        "colors": W.MULTI_SELECT,
        "sizes": W.MULTI_SELECT,
        "color_set": W.MULTI_SELECT,
        "maybe": W.SELECT,
    }
    assert {name: f.options for name, f in schema.fields.items()} == {
        "color": ["red", "blue"],
        "size": ["s", "m", "l"],
        "colors": ["red", "blue"],
        "sizes": ["s", "m"],
        "color_set": ["red", "blue"],
        "maybe": ["red", "blue"],
    }


def test_containers_and_nested_models_are_json() -> None:
    class Nested(BaseModel):
        words: list[str]
        lookup: dict[str, int]
        pair: tuple[int, int]
        ids: set[int]
        address: Address
        addresses: list[Address]

    assert set(widgets(Nested).values()) == {W.JSON_EDITOR}


def test_detect_widget_on_one_field() -> None:
    info = Everything.model_fields["rating"]
    assert UISchemaGenerator.detect_widget("rating", info) is W.SLIDER
    assert UISchemaGenerator.detect_widget("notes", Everything.model_fields["title"]) is W.TEXT_AREA


# --- Field attributes -----------------------------------------------------------------------


def test_labels_come_from_title_or_name() -> None:
    class Labelled(BaseModel):
        first_name: str
        sku: str = Field(title="Stock keeping unit")

    schema = UISchemaGenerator.generate(Labelled)
    assert schema.fields["first_name"].label == "First Name"
    assert schema.fields["sku"].label == "Stock keeping unit"


def test_required_follows_the_model() -> None:
    schema = UISchemaGenerator.generate(Product)
    assert {name: f.required for name, f in schema.fields.items()} == {
        "name": True,
        "price": True,
        "description": False,
        "is_active": False,
    }


def test_placeholder_and_help_from_examples_and_description() -> None:
    class Described(BaseModel):
        weight: float = Field(description="Kilograms.", examples=[1.5, 2])
        code: str

    schema = UISchemaGenerator.generate(Described)
    assert schema.fields["weight"].placeholder == "1.5"
    assert schema.fields["weight"].help_text == "Kilograms."
    assert schema.fields["code"].placeholder == ""
    assert schema.fields["code"].help_text == ""


def test_order_follows_the_model() -> None:
    schema = UISchemaGenerator.generate(Product)
    assert [f.order for f in schema.fields.values()] == [0, 1, 2, 3]


def test_validation_rules_and_metadata() -> None:
    class Constrained(BaseModel):
        name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z]+$")
        price: decimal.Decimal = Field(gt=0, max_digits=8, decimal_places=2)
        step: int = Field(ge=0, multiple_of=5)
        plain: str

    schema = UISchemaGenerator.generate(Constrained)
    assert schema.fields["name"].validation_rules == [
        {"rule": "min_length", "value": 1},
        {"rule": "max_length", "value": 100},
        {"rule": "pattern", "value": "^[a-z]+$"},
    ]
    assert schema.fields["price"].metadata == {"gt": 0, "max_digits": 8, "decimal_places": 2}
    assert schema.fields["step"].metadata == {"ge": 0, "multiple_of": 5}
    assert schema.fields["plain"].validation_rules == []
    assert schema.fields["plain"].metadata == {}


def test_formats_come_from_ui_settings() -> None:
    class Formatted(BaseModel):
        day: datetime.date
        at: datetime.datetime | None = None
        amount: decimal.Decimal
        count: int
        name: str

    settings = UISettings(
        date_format="%d/%m/%Y", datetime_format="%d/%m/%Y %H:%M", number_format=".1f"
    )
    schema = UISchemaGenerator.generate(Formatted, ui_settings=settings)
    assert {name: f.format for name, f in schema.fields.items()} == {
        "day": "%d/%m/%Y",
        "at": "%d/%m/%Y %H:%M",
        "amount": ".1f",
        "count": ".1f",
        "name": None,
    }


def test_formats_default_to_the_seeds_settings() -> None:
    class Formatted(BaseModel):
        day: datetime.date
        price: float

    schema = UISchemaGenerator.generate(Formatted)
    assert schema.fields["day"].format == "%Y-%m-%d"
    assert schema.fields["price"].format == ",.2f"


def test_the_schema_survives_a_json_round_trip() -> None:
    class Odd(BaseModel):
        price: decimal.Decimal = Field(ge=decimal.Decimal("0.5"), le=decimal.Decimal("99.5"))
        color: Literal[Color.RED, Color.BLUE] = Color.RED

    for model in (Everything, Product, Odd):
        schema = UISchemaGenerator.generate(model)
        wire = json.loads(json.dumps(schema.model_dump(mode="json")))
        assert UISchema.model_validate(wire) == schema
    odd = UISchemaGenerator.generate(Odd)
    assert odd.model == "Odd"
    assert odd.fields["price"].metadata == {"ge": 0.5, "le": 99.5}
    assert odd.fields["color"].options == ["red", "blue"]


# --- Overrides ------------------------------------------------------------------------------


def test_overrides_replace_generated_attributes() -> None:
    overrides: dict[str, dict[str, Any]] = {
        "price": {"widget": "slider", "label": "Price (EUR)", "help_text": "Before tax."},
        "description": {"hidden": True},
    }
    schema = UISchemaGenerator.generate(Product, overrides=overrides)
    price = schema.fields["price"]
    assert (price.widget, price.label, price.help_text) == (W.SLIDER, "Price (EUR)", "Before tax.")
    assert price.required is True  # untouched attributes keep their generated values
    assert schema.fields["description"].hidden is True


def test_an_override_of_an_unknown_field_is_refused() -> None:
    with pytest.raises(InvalidSchema, match="'colour'"):
        UISchemaGenerator.generate(Product, overrides={"colour": {"label": "Colour"}})


def test_an_override_of_an_unknown_attribute_is_refused() -> None:
    with pytest.raises(InvalidSchema, match=r"'price'.*\['colour'\]") as caught:
        UISchemaGenerator.generate(Product, overrides={"price": {"colour": "red"}})
    assert caught.value.details == {"field": "price", "attributes": ["colour"]}


def test_an_override_with_a_bad_value_is_refused() -> None:
    with pytest.raises(InvalidSchema, match="'widget'"):
        UISchemaGenerator.generate(Product, overrides={"price": {"widget": "dial"}})
    with pytest.raises(InvalidSchema, match="must map"):
        UISchemaGenerator.generate(Product, overrides={"price": "slider"})  # type: ignore[dict-item]


# --- Role views -----------------------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)
    cost: Supplier
    stock: int = 0


def item_permissions() -> ModelPermissions:
    permissions = ModelPermissions("Item")
    permissions.role_permissions["editor"] = {Permission.READ, Permission.CREATE, Permission.UPDATE}
    # price: masked for everyone but admin; cost: admin only; stock: editors may read, not write.
    permissions.field_permissions["price"] = FieldPermission(
        "price", read_roles={"admin", "editor"}, write_roles={"admin", "editor"}, mask="redact"
    )
    permissions.field_permissions["cost"] = FieldPermission(
        "cost", read_roles={"admin"}, write_roles={"admin"}
    )
    permissions.field_permissions["stock"] = FieldPermission(
        "stock", read_roles={"admin", "editor", "user"}, write_roles={"admin"}
    )
    return permissions


def readonly(schema: UISchema) -> dict[str, bool]:
    return {name: f.readonly for name, f in schema.fields.items()}


def test_admin_sees_and_edits_everything() -> None:
    schema = UISchemaGenerator.generate(Item)
    view = schema.for_role(item_permissions(), "admin")
    assert view == schema
    assert view is not schema


def test_a_field_the_role_may_not_see_is_removed() -> None:
    view = UISchemaGenerator.generate(Item).for_role(item_permissions(), "editor")
    assert "cost" not in view.fields
    assert "cost" not in view.model_dump_json()


def test_masked_and_unwritable_fields_are_readonly() -> None:
    view = UISchemaGenerator.generate(Item).for_role(item_permissions(), "editor")
    assert readonly(view) == {"name": False, "price": True, "stock": True}


def test_a_role_that_may_not_create_or_update_gets_a_readonly_form() -> None:
    view = UISchemaGenerator.generate(Item).for_role(item_permissions(), "user")
    assert readonly(view) == {"name": True, "price": True, "stock": True}
    assert readonly(UISchemaGenerator.generate(Item).for_role(item_permissions(), "stranger")) == {
        "name": True,
        "price": True,
    }


def test_the_operation_decides_for_a_form_of_one_purpose() -> None:
    permissions = ModelPermissions("Product")
    permissions.role_permissions["creator"] = {Permission.CREATE}
    schema = UISchemaGenerator.generate(Product)
    assert not any(readonly(schema.for_role(permissions, "creator", Permission.CREATE)).values())
    assert all(readonly(schema.for_role(permissions, "creator", Permission.UPDATE)).values())


def test_a_role_view_leaves_the_original_alone() -> None:
    schema = UISchemaGenerator.generate(Item)
    schema.for_role(item_permissions(), "user")
    assert set(schema.fields) == {"name", "price", "cost", "stock"}
    assert not any(readonly(schema).values())


def test_a_readonly_override_stays_readonly_for_admin() -> None:
    schema = UISchemaGenerator.generate(Item, overrides={"name": {"readonly": True}})
    assert schema.for_role(item_permissions(), "admin").fields["name"].readonly is True


# --- react-jsonschema-form export -----------------------------------------------------------


def rjsf_widgets(exported: dict[str, Any]) -> dict[str, str | None]:
    fields = exported["uiSchema"]["ui:order"]
    return {name: exported["uiSchema"][name].get("ui:widget") for name in fields}


def assert_rjsf_shape(exported: dict[str, Any]) -> None:
    assert set(exported) == {"schema", "uiSchema"}
    schema, ui_schema = exported["schema"], exported["uiSchema"]
    assert ui_schema["ui:order"] == list(schema["properties"])
    assert set(ui_schema) == {"ui:order", *schema["properties"]}
    for name in schema["properties"]:
        assert set(ui_schema[name]) <= RJSF_FIELD_KEYS, name
        assert ui_schema[name].get("ui:widget", "text") in RJSF_WIDGETS, name
    json.dumps(exported)


def test_rjsf_export_for_the_seeds_product() -> None:
    exported = to_rjsf(Product.model_json_schema(), UISchemaGenerator.generate(Product))
    assert_rjsf_shape(exported)
    assert exported["schema"]["required"] == ["name", "price"]
    assert exported["uiSchema"] == {
        "ui:order": ["name", "price", "description", "is_active"],
        "name": {"ui:title": "Name"},
        "price": {"ui:title": "Price", "ui:widget": "updown"},
        "description": {"ui:title": "Description", "ui:widget": "textarea"},
        "is_active": {"ui:title": "Is Active", "ui:widget": "checkbox"},
    }


def test_rjsf_export_for_the_seeds_user_model() -> None:
    class UserModel(BaseModel):
        email: str
        password: str
        description: str

    exported = to_rjsf(UserModel.model_json_schema(), UISchemaGenerator.generate(UserModel))
    assert_rjsf_shape(exported)
    assert rjsf_widgets(exported) == {
        "email": "email",
        "password": "password",
        "description": "textarea",
    }


def test_rjsf_export_of_every_widget() -> None:
    class Times(Everything):
        at: datetime.datetime
        secret: str = ""

    overrides = {"secret": {"hidden": True, "placeholder": "s3cret", "help_text": "Kept."}}
    schema = UISchemaGenerator.generate(Times, overrides=overrides)
    exported = to_rjsf(Times.model_json_schema(), schema)
    assert_rjsf_shape(exported)
    assert rjsf_widgets(exported) == {
        "title": None,
        "notes": "textarea",
        "password": "password",
        "email": "email",
        "homepage_url": "uri",
        "quantity": "updown",
        "rating": "range",
        "born_on": "date",
        "color": "select",
        "tags": "checkboxes",
        "enabled": "checkbox",
        "address": None,
        "at": "datetime",
        "secret": "hidden",
    }
    assert exported["uiSchema"]["secret"] == {
        "ui:title": "Secret",
        "ui:widget": "hidden",
        "ui:placeholder": "s3cret",
        "ui:help": "Kept.",
    }


def test_rjsf_export_makes_optional_values_plain() -> None:
    exported = to_rjsf(Everything.model_json_schema(), UISchemaGenerator.generate(Everything))
    assert exported["schema"]["properties"]["born_on"] == {
        "type": "string",
        "format": "date",
        "title": "Born On",
    }
    assert exported["schema"]["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert set(exported["schema"]["$defs"]) == {"Address", "Color"}


def test_rjsf_export_for_admin() -> None:
    permissions = item_permissions()
    view = UISchemaGenerator.generate(Item).for_role(permissions, "admin")
    exported = to_rjsf(Item.model_json_schema(), view)
    assert_rjsf_shape(exported)
    assert list(exported["schema"]["properties"]) == ["name", "price", "cost", "stock"]
    assert exported["schema"]["required"] == ["name", "price", "cost"]
    assert set(exported["schema"]["$defs"]) == {"Supplier"}
    assert not any("ui:readonly" in spec for spec in list(exported["uiSchema"].values())[1:])


def test_rjsf_export_for_a_restricted_role() -> None:
    json_schema = Item.model_json_schema()
    view = UISchemaGenerator.generate(Item).for_role(item_permissions(), "editor")
    exported = to_rjsf(json_schema, view)
    assert_rjsf_shape(exported)
    schema, ui_schema = exported["schema"], exported["uiSchema"]
    assert list(schema["properties"]) == ["name", "price", "stock"]
    assert schema["required"] == ["name", "price"]
    assert "$defs" not in schema  # Supplier was used by the removed field alone
    assert "cost" not in ui_schema and "cost" not in ui_schema["ui:order"]
    assert "Supplier" not in json.dumps(exported)
    assert ui_schema["price"]["ui:readonly"] is True
    assert ui_schema["stock"]["ui:readonly"] is True
    assert "ui:readonly" not in ui_schema["name"]
    assert "cost" in json_schema["properties"]  # the caller's schema is not changed


def test_rjsf_export_refuses_a_schema_without_the_fields() -> None:
    with pytest.raises(InvalidSchema, match="'price'"):
        to_rjsf({"type": "object", "properties": {"name": {}}}, UISchemaGenerator.generate(Product))
