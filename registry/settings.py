"""Typed settings: environment first, then `settings.toml`, then the defaults written here.

The file is found at `$DMR_SETTINGS`, else `./settings.toml`, else `settings.toml` in the
per-user config directory (registry/locations.py); none found means defaults. The database,
broker and result URLs default to files in one absolute per-user data directory.
Any key can be overridden as `DMR_<SECTION>__<KEY>` (`DMR_AUDIT__BATCH_SIZE=500`), and the
common three have short names: `DMR_DATABASE_URL`, `DMR_BROKER_URL`, `DMR_RESULT_BACKEND`.
`Settings.load()` validates everything once; a bad value raises `ConfigurationError` naming
its key.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from . import locations
from .errors import ConfigurationError

__all__ = [
    "MAX_RETENTION_DAYS",
    "AuditSettings",
    "CelerySettings",
    "CqrsSettings",
    "DatabaseSettings",
    "FlowerSettings",
    "ModelsSettings",
    "PermissionDefaults",
    "ProducerTrust",
    "SecuritySettings",
    "Settings",
    "UISettings",
]

ENV_PREFIX = "DMR_"
SHORT_ENV_NAMES = {
    "DMR_DATABASE_URL": ("database", "url"),
    "DMR_BROKER_URL": ("celery", "broker_url"),
    "DMR_RESULT_BACKEND": ("celery", "result_backend"),
}
ALL_OPERATIONS = ["create", "read", "update", "delete", "list"]
#: Longest any retention or cleanup age may be, in days: a century; past it the cutoff date
#: (now minus the age) overflows, which would fail every scheduled purge instead of the start.
MAX_RETENTION_DAYS = 36_500
WorkerQueue = Literal["registry", "crud", "cqrs", "imports", "audit"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PermissionDefaults(_Section):
    default_user_permissions: list[Literal["create", "read", "update", "delete", "list"]] = [
        "read",
        "list",
    ]
    default_admin_permissions: list[Literal["create", "read", "update", "delete", "list"]] = [
        "create",
        "read",
        "update",
        "delete",
        "list",
    ]


class UISettings(_Section):
    date_format: str = "%Y-%m-%d"
    datetime_format: str = "%Y-%m-%d %H:%M"
    number_format: str = ",.2f"


class ModelsSettings(_Section):
    audit_compression: bool = True
    audit_retention_days: int = Field(default=90, ge=1, le=MAX_RETENTION_DAYS)
    #: Days an idempotency key (and the result it answers repeats with) is kept; a message
    #: redelivered or retried later than this would be written again.
    idempotency_retention_days: int = Field(default=7, ge=1, le=MAX_RETENTION_DAYS)
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    #: Deepest row an offset page (`page=`) may start at; past it, lists walk with cursors.
    max_offset: int = Field(default=10_000, ge=0)
    #: Most values one `in` filter may hold.
    max_filter_values: int = Field(default=1000, ge=1, le=100_000)
    #: A list's default count is exact up to this many matching rows, else estimated.
    count_exact_limit: int = Field(default=10_000, ge=0)
    #: Key that signs list cursors; every worker must share it. Empty derives one from the
    #: database URL (password included), which every worker of a deployment already shares.
    cursor_secret: str = ""
    #: Largest accepted record payload, in bytes of its JSON encoding.
    max_payload_bytes: int = Field(default=1_048_576, ge=1024)
    #: Seconds a running import may go without a chunk finishing before its status says
    #: "stalled" (a chunk's worker died and its message was lost); resume it then.
    import_stall_after_s: float = Field(default=300.0, gt=0)
    #: Days an ended import job (its chunk marks and rejected rows) is kept before the
    #: scheduled cleanup deletes it; 0 keeps jobs until someone cleans them up by hand.
    import_retention_days: int = Field(default=30, ge=0, le=MAX_RETENTION_DAYS)
    #: Roles that see field values unmasked.
    unmasked_roles: list[str] = ["admin"]
    #: Roles that may register models and change permissions (the management permission).
    manager_roles: list[str] = Field(default_factory=lambda: ["admin"], min_length=1)
    #: Custom masks by name: {"last2": "package.module:function"}, loaded in every process.
    masks: dict[str, str] = {}
    permissions: PermissionDefaults = PermissionDefaults()
    ui: UISettings = UISettings()


def _embedded(kind: str) -> str:
    return locations.embedded_urls(locations.data_dir(os.environ))[kind]


class DatabaseSettings(_Section):
    #: Default: SQLite in the per-user data directory (`Settings.load` fills it in).
    url: str = Field(default_factory=lambda: _embedded("database"))
    pool_size: int = Field(default=5, ge=1)
    echo: bool = False
    #: SQLite's PRAGMA synchronous: "full" survives power loss; "normal" only process crashes.
    sqlite_synchronous: Literal["full", "normal"] = "full"


class CelerySettings(_Section):
    #: Default: kombu's filesystem transport in the per-user data directory.
    broker_url: str = Field(default_factory=lambda: _embedded("broker"))
    #: Default: SQLite in the per-user data directory.
    result_backend: str = Field(default_factory=lambda: _embedded("results"))
    #: Seconds a task result is kept by the result backend.
    result_expires: int = Field(default=3600, ge=1)
    #: Seconds between polls for polling transports (the embedded SQLAlchemy broker).
    polling_interval: float = Field(default=0.01, gt=0)
    worker_concurrency: int = Field(default=2, ge=1)
    #: Seconds a producer waits for a result before giving up.
    result_timeout: float = Field(default=30.0, gt=0)
    #: Retries of a task that failed because the database was unreachable.
    max_retries: int = Field(default=5, ge=0)
    #: Redis broker only: seconds after which a message taken but never acknowledged (its
    #: worker died) is delivered again. Longer than the longest task; writes are idempotent.
    visibility_timeout: float = Field(default=300.0, gt=0)
    #: Longest wait between two of those retries, in seconds (the backoff doubles up to it).
    retry_backoff_max: float = Field(default=30.0, gt=0)
    #: Queues a worker consumes when its command line names none.
    worker_queues: list[WorkerQueue] = Field(
        default_factory=lambda: list[WorkerQueue](["registry", "crud"]), min_length=1
    )
    #: Largest task message body accepted, in bytes; checked by the client before sending
    #: and by the worker before running, so that no oversized argument reaches the domain.
    max_message_bytes: int = Field(default=2_097_152, ge=1024)
    #: Deepest nesting of lists and objects a task message may hold; a worker refuses deeper
    #: ones before they reach a pool child (handing them over would overflow the stack).
    max_message_depth: int = Field(default=128, ge=16, le=256)
    #: Seconds a task may run before `TaskTimeLimitExceeded` is raised inside it (its
    #: transaction rolls back), and before its pool child is killed if it does not stop.
    task_soft_time_limit: float = Field(default=120.0, gt=0)
    task_time_limit: float = Field(default=150.0, gt=0)

    @model_validator(mode="after")
    def _hard_limit_after_soft(self) -> CelerySettings:
        if self.task_time_limit <= self.task_soft_time_limit:
            raise ValueError(
                "task_time_limit must be longer than task_soft_time_limit, so that a task "
                "can stop cleanly before it is killed"
            )
        return self


class AuditSettings(_Section):
    """The audit worker: how compaction cuts blocks, when it runs, and when purge runs."""

    #: Most entries compressed into one block (bigger blocks spread each block's fixed cost,
    #: smaller ones make a one-record history open less).
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    #: Seconds an entry may wait for a fuller block before a scheduled compaction takes it.
    max_wait_seconds: float = Field(default=5.0, gt=0)
    #: Seconds between scheduled compactions (beat).
    compact_interval_seconds: float = Field(default=2.0, gt=0)
    #: Pending entries past which a compaction is asked for at once, between schedules.
    compact_threshold: int = Field(default=5000, ge=1)
    #: A worker checks that threshold after every this many successful `records.*` tasks.
    threshold_check_every: int = Field(default=100, ge=1)
    #: Most blocks one `audit.compact` task writes before it returns.
    max_blocks_per_run: int = Field(default=50, ge=1)
    #: Codec of new blocks: "zlib" (the specification's) or "zstd".
    codec: Literal["zlib", "zstd"] = "zlib"
    #: Compression level; None takes the codec's default (zlib 6, zstd 3).
    compression_level: int | None = Field(default=None, ge=0, le=22)
    #: Seconds between purges of blocks older than `models.audit_retention_days`.
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    #: Secrets of the keyed audit hashes by key id, each at least 32 characters:
    #: `{"k2": "...", "k1": "..."}`; never stored in the database. Empty: `key_file` holds them.
    keys: dict[str, SecretStr] = {}
    #: The key new entries and blocks are signed with; may be left out when there is one.
    key_id: str | None = None
    #: Used when `keys` is empty: `{"current": id, "keys": {id: secret}}`, created once with
    #: a fresh key when missing. None: beside a SQLite database file, else
    #: `dmr-audit-keys.json`. Every process writing one database must share its keys.
    key_file: str | None = None


class CqrsSettings(_Section):
    """Commands, the projector and queries of models in cqrs or hybrid mode."""

    #: Modules that workers import at start to register custom command handlers
    #: (`registry.cqrs.command_handler`), e.g. ["shop.commands"].
    command_modules: list[str] = []
    #: Most events a projector applies to one projection in one transaction.
    projector_batch_size: int = Field(default=2000, ge=1, le=100_000)
    #: Seconds between scheduled projector runs (beat); commands also trigger one.
    project_interval_seconds: float = Field(default=1.0, gt=0)
    #: Longest `wait_seconds` a query may ask for (seconds).
    max_wait_seconds: float = Field(default=30.0, gt=0)
    #: Records per transaction when a mode switch appends snapshot events.
    backfill_chunk: int = Field(default=500, ge=1, le=100_000)
    #: Attempts of a command without `expected_version` that lost a race for its version.
    command_attempts: int = Field(default=5, ge=1, le=100)


class ProducerTrust(_Section):
    """What one signed producer may claim, named by its certificate's common name."""

    #: Roles its messages may claim as `user_role`; `["*"]` is any role (workers and beat,
    #: which re-send messages they accepted: retries, schedules).
    roles: list[str] = []
    #: Whether it may send tasks that change models and permissions (`registry.register_model`,
    #: `registry.set_permissions`, `cqrs.define_projection`); the claimed role must still be
    #: one of `models.manager_roles`.
    manage_models: bool = False

    def may_claim(self, role: str) -> bool:
        return "*" in self.roles or role in self.roles


class SecuritySettings(_Section):
    """Message signing: Celery's `auth` serializer over JSON, and what each signer may claim."""

    #: Sign every task message this process sends, and (workers) accept only messages signed
    #: by a certificate in `cert_store` whose producer entry allows the role and the task.
    signing: bool = False
    #: This process's RSA private key and its certificate, PEM files.
    key: str | None = None
    key_password: SecretStr | None = None
    certificate: str | None = None
    #: The certificates workers trust: a directory of PEM files, or a glob.
    cert_store: str | None = None
    #: Digest of the signatures.
    digest: Literal["sha256", "sha384", "sha512"] = "sha256"
    #: Role ceiling and management right per producer, by certificate common name (CN).
    producers: dict[str, ProducerTrust] = {}

    @model_validator(mode="after")
    def _files_when_signing(self) -> SecuritySettings:
        missing = [name for name in ("key", "certificate", "cert_store")
                   if self.signing and not getattr(self, name)]
        if missing:
            raise ValueError(f"signing needs {', '.join(missing)} (PEM files) to be set")
        return self


class FlowerSettings(_Section):
    address: str = "127.0.0.1"
    port: int = Field(default=5555, ge=1, le=65535)
    #: `user:password` pairs separated by commas; empty: `dmr flower` makes a random password
    #: and prints it (no password ships with the project).
    basic_auth: str = ""


class Settings(_Section):
    models: ModelsSettings = ModelsSettings()
    database: DatabaseSettings = DatabaseSettings()
    celery: CelerySettings = CelerySettings()
    audit: AuditSettings = AuditSettings()
    flower: FlowerSettings = FlowerSettings()
    cqrs: CqrsSettings = CqrsSettings()
    security: SecuritySettings = SecuritySettings()

    @classmethod
    def load(
        cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the file and the environment, then validate; raises `ConfigurationError`."""
        environ = os.environ if environ is None else environ
        data = _read_file(_settings_path(path, environ))
        _apply_environment(data, environ)
        _apply_embedded_defaults(data, environ)
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Settings:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise ConfigurationError(
                f"Setting {key!r} is invalid: {first['msg']}.", key=key
            ) from None

    def with_overrides(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys replaced: `settings.with_overrides(database={"url": ...})`."""
        data = self.model_dump()
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        return Settings.from_mapping(data)


def _settings_path(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    return locations.find_settings_file(environ)


#: Settings whose default is a file in the data directory, and that file's kind.
_EMBEDDED_KEYS = {
    ("database", "url"): "database",
    ("celery", "broker_url"): "broker",
    ("celery", "result_backend"): "results",
}


def _apply_embedded_defaults(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Fill the URLs nobody set with the data directory's files, creating the directory."""
    missing = [
        (section, key) for section, key in _EMBEDDED_KEYS
        if not isinstance(data.get(section), dict) or key not in data[section]
    ]
    if not missing:
        return
    directory = locations.data_dir(environ)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"Data directory {str(directory)!r} cannot be created: {exc.strerror}; set "
            "DMR_DATA_DIR or the URLs.", key="DMR_DATA_DIR"
        ) from None
    urls = locations.embedded_urls(directory)
    for section, key in missing:
        _set_nested(data, (section, key), urls[_EMBEDDED_KEYS[section, key]])


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"Settings file {str(path)!r} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"Settings file {str(path)!r} is not valid TOML: {exc}.") from None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
            _set_nested(data, path, _parse_env_value(value))
    # The short names go last, so they win over their long forms whatever the order.
    for name, short_path in SHORT_ENV_NAMES.items():
        if name in environ:
            _set_nested(data, short_path, _parse_env_value(environ[name]))


def _parse_env_value(value: str) -> Any:
    # Lists, numbers and booleans arrive as JSON; anything else is a plain string.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _set_nested(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value
