"""The dynamic model registry: the domain, usable in-process with no Celery at all.

    from registry import DynamicModelRegistry
    registry = DynamicModelRegistry()            # a fresh in-memory SQLite registry
    registry.register_model("Product", Product)
    registry.create("Product", {...}, user_id="u1", user_role="admin")

This package never imports celery, kombu, tasks or workers (a test checks).
"""

from .audit import AuditEntry, AuditLogger
from .catalog import ModelEntry, OperationMode
from .core import DynamicModelRegistry
from .errors import (
    AuditIntegrityError,
    ConfigurationError,
    DuplicateValue,
    IdempotencyConflict,
    InvalidCursor,
    InvalidFilter,
    InvalidIndex,
    InvalidName,
    InvalidPermissions,
    InvalidSchema,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RecordNotFound,
    RegistryError,
    SchemaIncompatible,
    UnknownField,
    ValidationFailed,
    VersionConflict,
)
from .operations import (
    Command,
    CreateRecord,
    DeleteRecord,
    GetRecord,
    ListRecords,
    Query,
    RecordAsOf,
    RecordHistory,
    UpdateRecord,
)
from .permissions import FieldPermission, ModelPermissions, Permission, register_mask
from .schema import model_from_schema, model_to_schema
from .settings import Settings
from .ui import UIFieldSchema, UISchema, UISchemaGenerator, UIWidgetType

__all__ = [
    "AuditEntry",
    "AuditIntegrityError",
    "AuditLogger",
    "Command",
    "ConfigurationError",
    "CreateRecord",
    "DeleteRecord",
    "DuplicateValue",
    "DynamicModelRegistry",
    "FieldPermission",
    "GetRecord",
    "IdempotencyConflict",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidIndex",
    "InvalidName",
    "InvalidPermissions",
    "InvalidSchema",
    "ListRecords",
    "ModelEntry",
    "ModelNotFound",
    "ModelPermissions",
    "OperationMode",
    "PayloadTooLarge",
    "Permission",
    "PermissionDenied",
    "Query",
    "RecordAsOf",
    "RecordHistory",
    "RecordNotFound",
    "RegistryError",
    "SchemaIncompatible",
    "Settings",
    "UIFieldSchema",
    "UISchema",
    "UISchemaGenerator",
    "UIWidgetType",
    "UnknownField",
    "UpdateRecord",
    "ValidationFailed",
    "VersionConflict",
    "model_from_schema",
    "model_to_schema",
    "register_mask",
]
