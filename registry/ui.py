"""UI schemas: which form widget shows each field of a model, and how one role sees the form.

`UISchemaGenerator.generate` reads a Pydantic model once, at registration. Its result is plain
JSON (`model_dump(mode="json")`), so it can be stored in the catalog and travel through Celery.
`UISchema.for_role` narrows it to what one role may see and change, and `to_rjsf` turns it into
the `schema` / `uiSchema` pair that react-jsonschema-form renders.

Widget detection, first match wins (DESIGN.md, "Slider" and "Other widgets"):

1. A field that holds text is judged by its name: password, email, url or link, then
   description or notes (a text area).
2. Then by its type: bool -> toggle; int, float, Decimal -> slider with a lower and an upper
   bound, else number; EmailStr -> email; AnyUrl -> url; SecretStr -> password; a str longer
   than 255 characters -> text_area; date or datetime -> date_picker; Enum or Literal -> select;
   a list or set of those -> multi_select; other lists, sets, tuples, dicts and nested models
   -> json_editor; anything else -> text_input.

Names decide only for text: `email_verified: bool` stays a toggle and `link_count: int` a
number, because a text widget cannot edit those values (rjsf refuses one on a boolean).
"""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from .errors import InvalidSchema
from .permissions import ModelPermissions, Permission
from .settings import UISettings
from .types import FieldKind, FieldType, classify

__all__ = ["UIFieldSchema", "UISchema", "UISchemaGenerator", "UIWidgetType", "to_rjsf"]


class UIWidgetType(enum.Enum):
    TEXT_INPUT = "text_input"
    TEXT_AREA = "text_area"
    PASSWORD = "password"
    EMAIL = "email"
    URL = "url"
    NUMBER = "number"
    SLIDER = "slider"
    DATE_PICKER = "date_picker"
    SELECT = "select"
    MULTI_SELECT = "multi_select"
    TOGGLE = "toggle"
    JSON_EDITOR = "json_editor"


class UIFieldSchema(BaseModel):
    """How one field is shown in a form."""

    model_config = ConfigDict(extra="forbid")

    widget: UIWidgetType
    label: str
    placeholder: str = ""
    help_text: str = ""
    required: bool = False
    readonly: bool = False
    hidden: bool = False
    #: The constraints as `{"rule": name, "value": value}`, e.g. `{"rule": "gt", "value": 0}`.
    validation_rules: list[dict[str, Any]] = []
    #: The same constraints as one `{name: value}` mapping.
    metadata: dict[str, Any] = {}
    #: The values a select or multi_select offers.
    options: list[Any] = []
    #: How a value is displayed: a strftime pattern for dates, a format spec for numbers.
    format: str | None = None
    #: Position in the form; the model's field order.
    order: int = 0
    #: The role sees this field masked: the form carries no sample or default value of it.
    masked: bool = False


class UISchema(BaseModel):
    """The form of one model: its fields by name."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, UIFieldSchema]
    model: str = ""

    def for_role(
        self,
        permissions: ModelPermissions,
        user_role: str,
        operation: Permission | None = None,
    ) -> UISchema:
        """A copy for one role: unreadable fields removed, what it may not change readonly.

        `operation` is what the form is for (CREATE or UPDATE); without it the form is editable
        when the role may do either.
        """
        editable = _may_edit(permissions, user_role, operation)
        fields: dict[str, UIFieldSchema] = {}
        for name, field in self.fields.items():
            seen = permissions.field_visibility(name, user_role)
            if seen is False:
                # Removed rather than hidden: a hidden field would still reveal its name,
                # label and rules to a role that must not know it exists.
                continue
            writable = editable and seen is True and _may_write(permissions, name, user_role)
            update: dict[str, Any] = {"readonly": field.readonly or not writable}
            if seen is not True:
                # Examples and defaults are values too: a record left at its default reads
                # as that default, which a masked field must not give away.
                update.update(masked=True, placeholder="")
            fields[name] = field.model_copy(update=update, deep=True)
        return UISchema(fields=fields, model=self.model)


class UISchemaGenerator:
    """Builds the UI schema of a Pydantic model."""

    @staticmethod
    def generate(
        model_class: type[BaseModel],
        ui_settings: UISettings | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> UISchema:
        """The model's form; `overrides` (`{field: {attribute: value}}`) replace generated values.

        Raises `InvalidSchema` when an override names an unknown field or attribute, or sets an
        invalid value.
        """
        settings = ui_settings or UISettings()
        fields = {
            name: _field_schema(name, info, order, settings)
            for order, (name, info) in enumerate(model_class.model_fields.items())
        }
        _apply_overrides(fields, overrides or {})
        return UISchema(fields=fields, model=model_class.__name__)

    @staticmethod
    def detect_widget(name: str, field_info: FieldInfo) -> UIWidgetType:
        """The widget for a field, by the rules in this module's docstring."""
        field_type = classify(field_info.annotation)
        return _detect_widget(name, field_info, field_type, _constraints(field_info))


# --- Widget detection -----------------------------------------------------------------------

#: Longest text that still fits one line; past it (a typical VARCHAR limit) a text is prose.
LONG_TEXT = 255

_NAME_RULES: tuple[tuple[tuple[str, ...], UIWidgetType], ...] = (
    (("password",), UIWidgetType.PASSWORD),
    (("email",), UIWidgetType.EMAIL),
    (("url", "link"), UIWidgetType.URL),
    (("description", "notes"), UIWidgetType.TEXT_AREA),
)
_NUMBERS = frozenset({FieldKind.INTEGER, FieldKind.FLOAT, FieldKind.DECIMAL})
_WIDGET_BY_KIND = {
    FieldKind.BOOLEAN: UIWidgetType.TOGGLE,
    FieldKind.DATE: UIWidgetType.DATE_PICKER,
    FieldKind.DATETIME: UIWidgetType.DATE_PICKER,
    FieldKind.CHOICE: UIWidgetType.SELECT,
}
_WIDGET_BY_STRING_FORMAT = {"email": UIWidgetType.EMAIL, "url": UIWidgetType.URL}


def _detect_widget(
    name: str, info: FieldInfo, field_type: FieldType, constraints: Mapping[str, Any]
) -> UIWidgetType:
    if _holds_text(field_type):
        by_name = _widget_by_name(name)
        if by_name is not None:
            return by_name
    return _widget_by_type(info, field_type, constraints)


def _holds_text(field_type: FieldType) -> bool:
    # Types classify() cannot place (SecretStr, bytes, unions) are edited as text too.
    return field_type.kind is FieldKind.STRING or (
        field_type.kind is FieldKind.JSON and field_type.container == "any"
    )


def _widget_by_name(name: str) -> UIWidgetType | None:
    lowered = name.lower()
    for words, widget in _NAME_RULES:
        if any(word in lowered for word in words):
            return widget
    return None


def _widget_by_type(
    info: FieldInfo, field_type: FieldType, constraints: Mapping[str, Any]
) -> UIWidgetType:
    if field_type.kind is FieldKind.STRING:
        return _text_widget(field_type, constraints)
    if field_type.kind in _NUMBERS:
        return _number_widget(constraints)
    if field_type.kind is FieldKind.JSON:
        return _json_widget(info, field_type)
    return _WIDGET_BY_KIND.get(field_type.kind, UIWidgetType.TEXT_INPUT)


def _text_widget(field_type: FieldType, constraints: Mapping[str, Any]) -> UIWidgetType:
    if field_type.string_format in _WIDGET_BY_STRING_FORMAT:
        return _WIDGET_BY_STRING_FORMAT[field_type.string_format]
    if constraints.get("max_length", 0) > LONG_TEXT:
        return UIWidgetType.TEXT_AREA
    return UIWidgetType.TEXT_INPUT


def _number_widget(constraints: Mapping[str, Any]) -> UIWidgetType:
    # A slider needs both ends of its track; with one bound the range is open.
    has_lower = "ge" in constraints or "gt" in constraints
    has_upper = "le" in constraints or "lt" in constraints
    return UIWidgetType.SLIDER if has_lower and has_upper else UIWidgetType.NUMBER


def _json_widget(info: FieldInfo, field_type: FieldType) -> UIWidgetType:
    items = field_type.items
    if field_type.container in ("list", "set") and items and items.kind is FieldKind.CHOICE:
        return UIWidgetType.MULTI_SELECT
    if field_type.container != "any":
        return UIWidgetType.JSON_EDITOR
    if _is_secret(info.annotation):
        return UIWidgetType.PASSWORD
    return UIWidgetType.TEXT_INPUT


def _is_secret(annotation: Any) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    return any(member in (SecretStr, SecretBytes) for member in members)


# --- Field attributes -----------------------------------------------------------------------

_CONSTRAINT_NAMES = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "min_length",
    "max_length",
    "pattern",
    "max_digits",
    "decimal_places",
)
_FORMAT_SETTING = {
    FieldKind.DATE: "date_format",
    FieldKind.DATETIME: "datetime_format",
    FieldKind.INTEGER: "number_format",
    FieldKind.FLOAT: "number_format",
    FieldKind.DECIMAL: "number_format",
}


def _field_schema(name: str, info: FieldInfo, order: int, settings: UISettings) -> UIFieldSchema:
    field_type = classify(info.annotation)
    constraints = _constraints(info)
    return UIFieldSchema(
        widget=_detect_widget(name, info, field_type, constraints),
        label=info.title or name.replace("_", " ").title(),
        placeholder=str(info.examples[0]) if info.examples else "",
        help_text=info.description or "",
        required=info.is_required(),
        validation_rules=[{"rule": rule, "value": value} for rule, value in constraints.items()],
        metadata=constraints,
        options=[_jsonable(choice) for choice in _choices(field_type)],
        format=_display_format(field_type, settings),
        order=order,
    )


def _constraints(info: FieldInfo) -> dict[str, Any]:
    # Read here rather than with types.bounds_of: the UI also shows pattern, max_digits and
    # decimal_places, and conint()'s annotated_types.Interval must be read by attribute.
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in _CONSTRAINT_NAMES:
            value = getattr(item, name, None)
            if value is not None:
                found[name] = _jsonable(value)
    return found


def _choices(field_type: FieldType) -> tuple[Any, ...]:
    if field_type.kind is FieldKind.CHOICE:
        return field_type.choices
    if field_type.items is not None and field_type.items.kind is FieldKind.CHOICE:
        return field_type.items.choices
    return ()


def _display_format(field_type: FieldType, settings: UISettings) -> str | None:
    setting = _FORMAT_SETTING.get(field_type.kind)
    return getattr(settings, setting) if setting else None


def _jsonable(value: Any) -> Any:
    """A JSON value for a constraint or choice, which must cross Celery as plain JSON."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, decimal.Decimal):
        # Bounds are display hints; the model still validates the exact Decimal.
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, re.Pattern):
        return value.pattern
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- Overrides ------------------------------------------------------------------------------


def _apply_overrides(
    fields: dict[str, UIFieldSchema], overrides: Mapping[str, Mapping[str, Any]]
) -> None:
    for name, changes in overrides.items():
        if name not in fields:
            raise InvalidSchema(
                f"The UI override names field {name!r}, which the model does not have.",
                field=name,
            )
        fields[name] = _overridden(name, fields[name], changes)


def _overridden(name: str, field: UIFieldSchema, changes: Mapping[str, Any]) -> UIFieldSchema:
    if not isinstance(changes, Mapping):
        raise InvalidSchema(f"The UI override of field {name!r} must map attributes to values.")
    unknown = sorted(set(changes) - set(UIFieldSchema.model_fields))
    if unknown:
        known = ", ".join(UIFieldSchema.model_fields)
        raise InvalidSchema(
            f"The UI override of field {name!r} names unknown attributes {unknown}; "
            f"known attributes: {known}.",
            field=name,
            attributes=unknown,
        )
    try:
        return UIFieldSchema.model_validate({**field.model_dump(), **changes})
    except ValidationError as exc:
        error = exc.errors()[0]
        attribute = str(error["loc"][0])
        raise InvalidSchema(
            f"The UI override of field {name!r} sets {attribute!r} to an invalid value: "
            f"{error['msg']}.",
            field=name,
            attribute=attribute,
        ) from None


# --- Permissions ----------------------------------------------------------------------------


def _may_edit(permissions: ModelPermissions, role: str, operation: Permission | None) -> bool:
    if operation is not None:
        return permissions.can_perform(role, operation)
    return permissions.can_perform(role, Permission.CREATE) or permissions.can_perform(
        role, Permission.UPDATE
    )


def _may_write(permissions: ModelPermissions, field: str, role: str) -> bool:
    rule = permissions.field_permissions.get(field)
    return rule is None or rule.can_write(role)


# --- react-jsonschema-form ------------------------------------------------------------------

#: rjsf's built-in widget names. None leaves rjsf's default: a text box for text, and for
#: nested values its object and array fields, since rjsf has no JSON editor and a textarea
#: cannot hold an object.
_RJSF_WIDGETS: dict[UIWidgetType, str | None] = {
    UIWidgetType.TEXT_INPUT: None,
    UIWidgetType.TEXT_AREA: "textarea",
    UIWidgetType.PASSWORD: "password",
    UIWidgetType.EMAIL: "email",
    UIWidgetType.URL: "uri",
    UIWidgetType.NUMBER: "updown",
    UIWidgetType.SLIDER: "range",
    UIWidgetType.DATE_PICKER: "date",
    UIWidgetType.SELECT: "select",
    UIWidgetType.MULTI_SELECT: "checkboxes",
    UIWidgetType.TOGGLE: "checkbox",
    UIWidgetType.JSON_EDITOR: None,
}
_DEFS_PREFIX = "#/$defs/"


def to_rjsf(json_schema: Mapping[str, Any], ui_schema: UISchema) -> dict[str, Any]:
    """`{"schema": ..., "uiSchema": ...}` for react-jsonschema-form.

    The schema keeps only the fields of `ui_schema`, so the export of a role's view omits what
    that role may not see. `json_schema` is the model's, keyed by field name (not alias).
    Raises `InvalidSchema` when it lacks a field of `ui_schema`.
    """
    names = sorted(ui_schema.fields, key=lambda name: (ui_schema.fields[name].order, name))
    schema = _restricted_schema(json_schema, names)
    for name in names:
        if ui_schema.fields[name].masked:
            for value_key in ("default", "examples", "const"):
                schema["properties"][name].pop(value_key, None)
        if ui_schema.fields[name].widget is UIWidgetType.MULTI_SELECT:
            # rjsf draws a list of choices as checkboxes only when it is a set of choices.
            schema["properties"][name]["uniqueItems"] = True
    return {"schema": schema, "uiSchema": _rjsf_ui_schema(ui_schema, schema["properties"], names)}


def _restricted_schema(json_schema: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    rebuilt = ("properties", "required", "$defs")
    schema = {key: copy.deepcopy(value) for key, value in json_schema.items() if key not in rebuilt}
    schema["properties"] = properties = _properties(json_schema, names)
    required = [name for name in json_schema.get("required", []) if name in properties]
    if required:
        schema["required"] = required
    definitions = _used_definitions(json_schema.get("$defs", {}), properties)
    if definitions:
        schema["$defs"] = definitions
    return schema


def _properties(json_schema: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    available = json_schema.get("properties", {})
    missing = [name for name in names if name not in available]
    if missing:
        raise InvalidSchema(
            f"The JSON Schema has no properties {missing}, which the UI schema names.",
            fields=missing,
        )
    return {name: _without_null_branch(copy.deepcopy(available[name])) for name in names}


def _without_null_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as plain X: an empty optional input already means "no value".

    rjsf draws `anyOf: [X, null]` as a chooser between X and null, and would seed a null
    default that then fails X's type in the browser.
    """
    branches = prop.get("anyOf")
    if not isinstance(branches, list):
        return prop
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(branches):
        return prop
    rest = {key: value for key, value in prop.items() if key != "anyOf"}
    if rest.get("default", ...) is None:
        del rest["default"]
    return {**kept[0], **rest}


def _used_definitions(definitions: Mapping[str, Any], properties: Any) -> dict[str, Any]:
    # Only what the kept properties refer to: a definition used by a removed field alone would
    # still show that field's shape.
    used: set[str] = set()
    pending = list(_references(properties))
    while pending:
        name = pending.pop()
        if name not in used and name in definitions:
            used.add(name)
            pending.extend(_references(definitions[name]))
    return {name: copy.deepcopy(definitions[name]) for name in sorted(used)}


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            yield ref[len(_DEFS_PREFIX) :]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _rjsf_ui_schema(
    ui_schema: UISchema, properties: Mapping[str, Any], names: list[str]
) -> dict[str, Any]:
    ui: dict[str, Any] = {"ui:order": names}
    for name in names:
        ui[name] = _rjsf_field(ui_schema.fields[name], properties[name])
    return ui


def _rjsf_field(field: UIFieldSchema, prop: Mapping[str, Any]) -> dict[str, Any]:
    ui: dict[str, Any] = {"ui:title": field.label}
    widget = "hidden" if field.hidden else _rjsf_widget(field.widget, prop)
    if widget is not None:
        ui["ui:widget"] = widget
    if field.placeholder:
        ui["ui:placeholder"] = field.placeholder
    if field.help_text:
        ui["ui:help"] = field.help_text
    if field.readonly:
        ui["ui:readonly"] = True
    return ui


def _rjsf_widget(widget: UIWidgetType, prop: Mapping[str, Any]) -> str | None:
    if widget is UIWidgetType.DATE_PICKER and prop.get("format") == "date-time":
        return "datetime"
    return _RJSF_WIDGETS[widget]
