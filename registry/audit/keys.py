"""The secret keys that audit entry and block hashes are made with.

A plain sha256 proves nothing against someone who can write the database: they change an
entry and compute its hash again. So every stored hash is an HMAC-SHA256 under a secret key
that lives in settings, the environment or a key file, never in the database, and names the
key it was made with: `"<key id>:<first 48 hex digits of the HMAC>"` (192 bits; the whole
fits the 64-character hash columns). Several keys can be known at once, one of them current:
new entries and blocks are signed with the current key, and anything signed with a known key
verifies, so a key is rotated by adding a new one, making it current, and keeping the old one
until retention has purged the blocks it signed.

Where the keys come from, first match wins:
1. `audit.keys` (`DMR_AUDIT__KEYS='{"k2": "...", "k1": "..."}'`), with `audit.key_id` naming
   the current one (needed when there are several);
2. an in-memory database, which dies with its process: a random key of its own (unless
   `audit.key_file` names a file);
3. the key file (`{"current": id, "keys": {id: secret}}`): `audit.key_file`, or by default
   beside a SQLite database file, or `audit-keys.json` in the per-user data directory for a
   server database (`default_key_file`); created once with a fresh random key when missing.
   Workers on several machines share one PostgreSQL, so they must share `audit.keys` too: a
   key file made on one machine is unknown on another.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..locations import data_dir
from ..settings import AuditSettings

__all__ = [
    "AuditKeys",
    "MAC_HEX_DIGITS",
    "default_key_file",
    "key_id_of",
    "load_audit_keys",
    "new_key_file",
    "new_secret",
    "read_key_file",
]

#: Hex digits of the HMAC kept in a stored hash: 192 bits.
MAC_HEX_DIGITS = 48
#: Key ids: short (they share the 64-character column with the MAC), lowercase (environment
#: keys are read lowercased), and free of the ":" that ends them.
KEY_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,14}")
#: Fewest characters of a secret: 32 random URL-safe characters carry 192 bits.
MIN_SECRET_CHARS = 32


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, with the key's inner and outer pads hashed
    once: every entry is hashed on the write path, and `hmac.digest` redoes that key work
    per call, which made each entry's hash four times as costly as a plain sha256; this
    way it is about as costly (bench/bench_audit.py). A test checks it against `hmac`."""

    __slots__ = ("inner", "outer")

    def __init__(self, secret: bytes) -> None:
        block = hashlib.sha256().block_size
        key = hashlib.sha256(secret).digest() if len(secret) > block else secret
        key = key.ljust(block, b"\0")
        self.inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self.outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def hexdigest(self, data: bytes) -> str:
        inner = self.inner.copy()
        inner.update(data)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass(frozen=True)
class AuditKeys:
    """The known keys by id, and which one signs new entries and blocks."""

    current_id: str
    secrets: Mapping[str, bytes]
    _macs: dict[str, _HmacSha256] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.secrets:
            raise ConfigurationError(
                f"Audit key id {self.current_id!r} is not among the configured keys "
                f"({', '.join(sorted(self.secrets)) or 'none'}).",
                key="audit.key_id",
            )
        macs = {key_id: _HmacSha256(secret) for key_id, secret in self.secrets.items()}
        object.__setattr__(self, "_macs", macs)

    @classmethod
    def generate(cls, key_id: str | None = None) -> AuditKeys:
        """One fresh random key: for an in-memory database, a new key file, or tests."""
        chosen = key_id or f"local-{secrets.token_hex(4)}"
        return cls(chosen, {chosen: new_secret().encode()})

    def sign(self, data: bytes) -> str:
        """The stored form of `data`'s HMAC under the current key."""
        mac = self._macs[self.current_id].hexdigest(data)
        return f"{self.current_id}:{mac[:MAC_HEX_DIGITS]}"

    def matches(self, data: bytes, stored: str) -> bool:
        """Whether `stored` is the HMAC of `data` under the known key it names."""
        key_id, _, mac = stored.partition(":")
        found = self._macs.get(key_id)
        return found is not None and hmac.compare_digest(
            mac, found.hexdigest(data)[:MAC_HEX_DIGITS]
        )

    def problem(self, data: bytes, stored: str) -> str | None:
        """Why `stored` is not the HMAC of `data`, in words, or None when it is."""
        if self.matches(data, stored):
            return None
        key_id, colon, _ = stored.partition(":")
        if not colon:
            return "its hash names no key: it was not written with a keyed hash"
        if key_id not in self.secrets:
            return (f"its hash names key {key_id!r}, which is not configured here (known: "
                    f"{', '.join(sorted(self.secrets))})")
        return f"it does not match its hash (made with key {key_id!r})"


def key_id_of(stored: str) -> str | None:
    """The key id a stored hash names, or None for one that names none."""
    key_id, colon, _ = stored.partition(":")
    return key_id if colon else None


def new_secret() -> str:
    return secrets.token_urlsafe(MIN_SECRET_CHARS)


def load_audit_keys(settings: AuditSettings, default_file: Path | None) -> AuditKeys:
    """The keys settings give (see the module docstring); `default_file` is the key file
    when `audit.key_file` names none, None for an in-memory database. Raises
    `ConfigurationError`."""
    if settings.keys:
        configured = {key_id: secret.get_secret_value() for key_id, secret in settings.keys.items()}
        return _keys_from(configured, settings.key_id, source="audit.keys")
    path = Path(settings.key_file) if settings.key_file else default_file
    if path is None:
        return AuditKeys.generate()
    if not path.exists():
        new_key_file(path)
    return read_key_file(path, settings.key_id)


def default_key_file(database_url: str) -> Path | None:
    """Where an installation keeps its key file when settings name none: beside a SQLite
    database file (`dmr.sqlite3.audit-keys.json`), in the per-user data directory for a server
    database (`audit-keys.json`, never relative to the working directory, so every command
    finds the same key), nowhere for an in-memory database, which dies with its process and
    may have a key that does too."""
    scheme, _, rest = database_url.partition(":")
    if scheme.split("+")[0] != "sqlite":
        return data_dir(os.environ) / "audit-keys.json"
    database = rest.removeprefix("///").split("?")[0]
    if database in ("", "//", ":memory:") or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(Path(database).name + ".audit-keys.json")


def read_key_file(path: Path, key_id: str | None = None) -> AuditKeys:
    """The keys a key file holds; `key_id` overrides the file's current key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"Audit key file {str(path)!r} cannot be read: {exc}.", key="audit.key_file"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ConfigurationError(
            f"Audit key file {str(path)!r} is not of the form "
            '{"current": "<key id>", "keys": {"<key id>": "<secret>"}}.',
            key="audit.key_file",
        )
    current = key_id or data.get("current")
    return _keys_from(data["keys"], current, source=f"audit key file {str(path)!r}")


def new_key_file(path: Path) -> AuditKeys:
    """Write a key file holding one fresh key, unless one exists already (then read that).

    The file is written whole under another name and linked into place, so processes
    starting together never see half a file, and exactly one of them makes the key.
    """
    keys = AuditKeys.generate()
    body = {"current": keys.current_id,
            "keys": {keys.current_id: keys.secrets[keys.current_id].decode()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dmr-audit-key-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:  # mkstemp makes it 0600
            json.dump(body, output, indent=2)
            output.flush()
            os.fsync(output.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return read_key_file(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return keys


def _keys_from(configured: Mapping[str, Any], current: str | None, *, source: str) -> AuditKeys:
    found: dict[str, bytes] = {}
    for key_id, secret in configured.items():
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise ConfigurationError(
                f"Audit key id {key_id!r} in {source} must be 1 to 15 lowercase letters, "
                "digits, '_', '.' or '-', starting with a letter or digit.",
                key="audit.keys",
            )
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"Audit key {key_id!r} in {source} must be a string of at least "
                f"{MIN_SECRET_CHARS} characters.",
                key="audit.keys",
            )
        found[key_id] = secret.encode()
    if current is None:
        if len(found) != 1:
            raise ConfigurationError(
                f"{source} holds {len(found)} keys; audit.key_id must name the current one.",
                key="audit.key_id",
            )
        current = next(iter(found))
    return AuditKeys(current, found)
