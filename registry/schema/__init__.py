"""Models as stored JSON Schema, and models rebuilt from it.

A registered model travels to worker processes as the JSON Schema that `model_to_schema` returns,
and `model_from_schema` rebuilds an equivalent Pydantic model there. Only what survives that trip
with unchanged behaviour is stored; anything else is refused with `InvalidSchema` naming the field.

Supported field types: str (min/max length, pattern), int and float (bounds, multipleOf), bool,
None, Decimal (max_digits, decimal_places, bounds), date, datetime, time, UUID, EmailStr, AnyUrl,
AnyHttpUrl and HttpUrl (and other URL types limited to schemes and length), Enums with str or int
values, Literal, Optional and unions of these, list, set, frozenset (rebuilt as set), tuple,
dict[str, X], Any, and nested models (in `$defs`, nested at any depth).

Refused: validators, serializers, computed fields, `model_post_init` and other overridden
BaseModel methods, Enums with a `_missing_` hook (Python code cannot travel to workers), Flag
enums (they accept combinations a list of members does not describe), compiled `re.Pattern`
patterns (checked with Python's re and its flags, where workers get only the text), aliases,
`exclude` and `exclude_if`, strict or otherwise behaviour-changing options (any model_config key
not known to leave validation and dumps alone), arbitrary classes, recursive models, non-finite
bounds, default factories that produce a fresh value on each call, defaults that are not JSON,
and field names starting with `model_` at any depth (Pydantic reserves them).

The parts:

    export            model -> JSON Schema (`model_to_schema`), with the round-trip check
    storable          what a model may use and still be stored (`StorableCheck`)
    config_keys       which `model_config` keys leave validation and dumps alone
    building          JSON Schema -> model (`model_from_schema`): models, fields, references
    scalars, reading  string and number nodes; one keyword of a node, checked
    enums             Enum classes rebuilt from listed values
    pydantic_decimal  Pydantic's own Decimal form, read back
    keywords          the keywords read, and the vendor keywords written
    depth             how deeply a schema nests, and its limit
    fields, diff      a schema's fields with `$ref`s resolved; how two schemas differ
"""

from .building import model_from_schema
from .diff import SchemaDiff, diff_schemas
from .export import model_to_schema
from .fields import schema_fields

__all__ = ["SchemaDiff", "diff_schemas", "model_from_schema", "model_to_schema", "schema_fields"]
