"""The JSON Schema keywords this package reads, and the vendor keywords it writes.

Vendor keywords are used only where plain JSON Schema is ambiguous:

    {"type": "string", "format": "decimal", "x-max-digits": 5, "x-decimal-places": 2}
        a Decimal; bounds are kept as `minimum` etc. A Decimal validates JSON numbers too, but
        its JSON form is a string, which keeps its precision.
    {"type": "string", "format": "decimal", "maximum": 1e16,
     "x-decimal-bounds": {"maximum": "9999999999999999.99"}}
        a Decimal bound with more digits than a JSON number keeps (it is read as a float by
        most parsers): the exact text, which wins over the rounded `maximum`.
    {"type": "array", "x-python-type": "tuple", ...}
        a tuple (`tuple[int, ...]` is otherwise the same schema as `list[int]`).
    {"enum": [1, 2], "x-python-type": "enum", ...}
        a plain Enum, which refuses the text "1" where an IntEnum (no vendor key) takes it.
    {"type": "string", "format": "uri", "x-url-schemes": ["http", "https"]}
        a URL limited to those schemes (HttpUrl when `maxLength` is 2083).

Other `x-` keys of a field (a field's `json_schema_extra`) are kept as they are, for UI hints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import annotated_types as at

X_PYTHON_TYPE = "x-python-type"
X_MAX_DIGITS = "x-max-digits"
X_DECIMAL_PLACES = "x-decimal-places"
X_URL_SCHEMES = "x-url-schemes"
X_DECIMAL_BOUNDS = "x-decimal-bounds"
#: A field's index declarations (registry/query/indexes.py reads them).
INDEX_KEYS = frozenset({"x-index", "x-unique"})
#: The vendor keywords above, which this package writes and reads itself; any other `x-` key
#: belongs to the user and is kept as it is.
VENDOR_KEYS = frozenset(
    {X_PYTHON_TYPE, X_MAX_DIGITS, X_DECIMAL_PLACES, X_URL_SCHEMES, X_DECIMAL_BOUNDS}
)

#: JSON Schema keywords that change what validates. One that no builder consumes is refused;
#: any other keyword (title, description, examples, $comment, x-...) only describes.
VALIDATING = frozenset(
    {
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "uniqueItems", "maxContains", "minContains", "contains", "maxProperties",
        "minProperties", "required", "dependentRequired", "dependentSchemas", "dependencies",
        "properties", "patternProperties", "additionalProperties", "propertyNames", "items",
        "prefixItems", "additionalItems", "unevaluatedItems", "unevaluatedProperties", "allOf",
        "anyOf", "oneOf", "not", "if", "then", "else", "format", "$ref", "$dynamicRef",
        "discriminator", "nullable", "contentEncoding", "contentSchema",
    }
)  # fmt: skip

#: OpenAPI producers tag numbers with their machine width; it narrows nothing we check.
WIDTH_FORMATS = frozenset({"int32", "int64", "float", "double"})
#: Each bound keyword and the annotated-types constraint it becomes.
BOUNDS: tuple[tuple[str, type[at.BaseMetadata]], ...] = (
    ("minimum", at.Ge),
    ("maximum", at.Le),
    ("exclusiveMinimum", at.Gt),
    ("exclusiveMaximum", at.Lt),
    ("multipleOf", at.MultipleOf),
)
BOUND_KEYWORDS = frozenset(keyword for keyword, _ in BOUNDS)

RESERVED_PREFIX = "starts with 'model_', which Pydantic reserves."


def user_vendor_keys(node: Mapping[str, Any]) -> dict[str, Any]:
    """The `x-` keys of `node` that belong to the user (UI hints, indexes), not to this package."""
    return {k: v for k, v in node.items() if is_user_vendor_key(k)}


def is_user_vendor_key(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("x-") and key not in VENDOR_KEYS
