"""Which `model_config` keys a stored model may set: a key missing from both lists is refused."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

#: model_config keys that may take any value: they change neither validation nor dumps, only
#: titles and descriptions (stored in the schema, so the round trip checks them), how Pydantic
#: builds the class, or which types it allows (the field checks refuse the others anyway).
#: `extra` is stored as `additionalProperties`.
HARMLESS_CONFIG = frozenset(
    {
        "title", "extra", "arbitrary_types_allowed", "protected_namespaces", "defer_build",
        "cache_strings", "use_attribute_docstrings", "model_title_generator",
        "field_title_generator",
    }
)  # fmt: skip
#: Every other model_config key Pydantic knows, with its default: set to anything else it may
#: change validation or dumps in a way JSON Schema does not record. A key on neither list (one
#: a later Pydantic adds) is refused until someone checks what it does.
NEUTRAL_CONFIG: dict[str, Any] = {
    "alias_generator": None,
    "allow_inf_nan": True,
    "coerce_numbers_to_str": False,
    "from_attributes": False,
    "frozen": False,
    "hide_input_in_errors": False,
    "ignored_types": (),
    "json_encoders": None,
    "json_schema_extra": None,
    "json_schema_mode_override": None,
    "json_schema_serialization_defaults_required": False,
    "loc_by_alias": True,
    "plugin_settings": None,
    "polymorphic_serialization": False,
    "populate_by_name": False,
    "regex_engine": "rust-regex",
    "revalidate_instances": "never",
    "schema_generator": None,
    "ser_json_bytes": "utf8",
    "ser_json_inf_nan": "null",
    "ser_json_temporal": "iso8601",
    "ser_json_timedelta": "iso8601",
    "serialize_by_alias": False,
    "str_max_length": None,
    "str_min_length": 0,
    "str_strip_whitespace": False,
    "str_to_lower": False,
    "str_to_upper": False,
    "strict": False,
    "url_preserve_empty_path": False,
    "use_enum_values": False,
    "val_json_bytes": "utf8",
    "val_temporal_unit": "infer",
    "validate_assignment": False,
    "validate_by_alias": True,
    "validate_by_name": False,
    "validate_default": False,
    "validate_return": False,
    "validation_error_cause": False,
}


def leaves_behaviour_alone(key: str, value: Any) -> bool:
    """Whether setting `model_config[key]` to `value` keeps validation and dumps as stored."""
    return key in HARMLESS_CONFIG or NEUTRAL_CONFIG.get(key, PydanticUndefined) == value
