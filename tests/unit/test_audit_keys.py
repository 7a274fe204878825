"""Keyed audit hashes: where the keys come from, rotation, and what verify says about them."""

from __future__ import annotations

import hmac
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registry import ConfigurationError, DynamicModelRegistry, Settings
from registry.audit.blocks import block_header, index_from_row, json_text
from registry.audit.keys import (
    AuditKeys,
    default_key_file,
    load_audit_keys,
    new_key_file,
    read_key_file,
)
from registry.settings import AuditSettings
from registry.tables import audit_blocks, audit_outbox

OLD_SECRET = "o" * 40
NEW_SECRET = "n" * 40


class Product(BaseModel):
    name: str
    price: float


def keyed(url: str, keys: dict[str, str], key_id: str | None = None) -> DynamicModelRegistry:
    settings = Settings().with_overrides(audit={"keys": keys, "key_id": key_id})
    registry = DynamicModelRegistry(url, settings=settings)
    registry.register_model("Product", Product)
    return registry


def write(registry: DynamicModelRegistry, count: int) -> None:
    for number in range(count):
        registry.create("Product", {"name": f"p{number}", "price": 1.0}, "u1", "admin")


def stored_hashes(registry: DynamicModelRegistry, column: sa.Column[Any]) -> list[str]:
    with registry.database.read() as conn:
        return list(conn.execute(sa.select(column)).scalars())


# -- signing --------------------------------------------------------------------------------


def test_a_stored_hash_names_its_key_and_fits_the_hash_column() -> None:
    keys = AuditKeys("k1", {"k1": OLD_SECRET.encode()})
    signed = keys.sign(b"body")
    key_id, _, mac = signed.partition(":")
    assert key_id == "k1" and len(mac) == 48 and len("x" * 15 + ":" + mac) <= 64
    assert keys.matches(b"body", signed)
    assert not keys.matches(b"body!", signed)
    assert not AuditKeys("k1", {"k1": NEW_SECRET.encode()}).matches(b"body", signed)
    assert "not configured" in str(AuditKeys("k2", {"k2": NEW_SECRET.encode()})
                                   .problem(b"body", signed))


@pytest.mark.parametrize("secret", [OLD_SECRET, "s" * 64, "l" * 200])
def test_the_stored_mac_is_hmac_sha256(secret: str) -> None:
    body = b'{"model":"Product","record_id":"r1"}' * 20
    signed = AuditKeys("k1", {"k1": secret.encode()}).sign(body)
    assert signed == "k1:" + hmac.new(secret.encode(), body, "sha256").hexdigest()[:48]


@pytest.mark.parametrize("value", [
    {"name": {"old": None, "new": "caf\u00e9 \u2028"}, "n": {"old": 1.5, "new": 10**30}},
    {"role": "admin", "version": 1, "tags": [True, None, {"x": -0.0}], "big": 1e300},
    [], {}, "text", 0,
])
def test_outbox_json_text_is_json_dumps_text(value: Any) -> None:
    # Hashes cover the stored text, and the text has always been json.dumps's.
    assert json_text(value) == json.dumps(value)


def test_rotation_signs_new_blocks_with_the_new_key_and_verifies_both(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rotation.sqlite3'}"
    before = keyed(url, {"k1": OLD_SECRET})
    write(before, 3)
    before.audit_logger.compact(force=True)
    before.close()

    after = keyed(url, {"k1": OLD_SECRET, "k2": NEW_SECRET}, key_id="k2")
    write(after, 2)
    after.audit_logger.compact(force=True)
    write(after, 1)  # stays pending, signed with k2
    report = after.verify_audit()
    assert report["ok"] is True and report["current_key_id"] == "k2"
    [first, second] = report["signers"]
    assert (first["key_id"], first["blocks"], second["key_id"], second["blocks"]) == (
        "k1", 1, "k2", 1)
    assert second["first_block"] == first["last_block"] + 1
    assert report["pending_signers"] == {"k2": 1}
    assert [h.split(":")[0] for h in stored_hashes(after, audit_blocks.c.hash)] == ["k1", "k2"]
    after.close()

    retired = keyed(url, {"k2": NEW_SECRET})  # k1 dropped while its block is still kept
    report = retired.verify_audit()
    assert report["ok"] is False and report["block_id"] == first["first_block"]
    assert report["key_id"] == "k1" and "'k1', which is not configured" in report["reason"]
    retired.close()


def test_a_block_re_signed_without_the_key_does_not_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forged.sqlite3'}"
    registry = keyed(url, {"k1": OLD_SECRET})
    write(registry, 2)
    registry.audit_logger.compact(force=True)
    forger = AuditKeys("k1", {"k1": NEW_SECRET.encode()})  # knows the id, not the secret
    with registry.database.write() as conn:
        block = dict(conn.execute(sa.select(audit_blocks)).mappings().one())
        header = block_header(block["prev_hash"], block["codec"], block["payload"],
                              index_from_row(block))
        conn.execute(sa.update(audit_blocks).values(hash=forger.sign(header)))
        conn.execute(sa.text("UPDATE dmr_audit_chain SET head_hash = :h"),
                     {"h": forger.sign(header)})
    report = registry.audit_logger.verify()
    assert report["ok"] is False and report["block_id"] == block["id"]
    assert "does not match its hash (made with key 'k1')" in report["reason"]
    registry.close()


# -- where keys come from -------------------------------------------------------------------


def test_without_keys_a_key_file_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.json"
    settings = AuditSettings(key_file=str(path))
    first = load_audit_keys(settings, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_audit_keys(settings, None)
    assert again == first and new_key_file(path) == first  # never replaced once made
    assert json.loads(path.read_text())["current"] == first.current_id
    assert list(tmp_path.joinpath("keys").iterdir()) == [path]  # no temporary file left


def test_processes_writing_one_database_share_the_key_file(tmp_path: Path) -> None:
    settings = Settings().with_overrides(audit={"key_file": str(tmp_path / "k.json")})
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    writer = DynamicModelRegistry(url, settings=settings)
    writer.register_model("Product", Product)
    write(writer, 2)
    compactor = DynamicModelRegistry(url, settings=settings)
    assert compactor.audit_logger.compact(force=True) == {"blocks": 1, "entries": 2}
    assert writer.verify_audit()["ok"] is True
    writer.close()
    compactor.close()


def test_an_in_memory_database_gets_a_key_of_its_own_and_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    one, two = DynamicModelRegistry(), DynamicModelRegistry()
    assert one.audit_logger.keys != two.audit_logger.keys
    assert list(tmp_path.iterdir()) == []


def test_the_key_file_lives_beside_a_sqlite_database_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "data" / "dmr.sqlite3"
    database.parent.mkdir()
    registry = DynamicModelRegistry(f"sqlite:///{database}")
    assert (tmp_path / "data" / "dmr.sqlite3.audit-keys.json").exists()
    registry.close()
    assert default_key_file("sqlite:///dmr.sqlite3") == Path("dmr.sqlite3.audit-keys.json")
    monkeypatch.setenv("DMR_DATA_DIR", str(tmp_path / "user-data"))
    server_key_file = default_key_file("postgresql+psycopg://u:p@h/db")
    assert server_key_file == (tmp_path / "user-data" / "audit-keys.json").resolve()
    assert default_key_file("sqlite://") is None and default_key_file("sqlite:///:memory:") is None


def test_keys_come_from_the_environment() -> None:
    environ = {"DMR_AUDIT__KEYS": json.dumps({"k2": NEW_SECRET, "k1": OLD_SECRET}),
               "DMR_AUDIT__KEY_ID": "k2"}
    settings = Settings.load(path=None, environ=environ)
    keys = load_audit_keys(settings.audit, None)
    assert keys.current_id == "k2" and set(keys.secrets) == {"k1", "k2"}
    assert NEW_SECRET not in repr(settings)  # secrets never show in logs


@pytest.mark.parametrize(
    ("audit", "key", "words"),
    [
        ({"keys": {"k1": "short"}}, "audit.keys", "at least 32"),
        ({"keys": {"K1": OLD_SECRET}}, "audit.keys", "lowercase"),
        ({"keys": {"a:b": OLD_SECRET}}, "audit.keys", "lowercase"),
        ({"keys": {"k1": OLD_SECRET, "k2": NEW_SECRET}}, "audit.key_id", "2 keys"),
        ({"keys": {"k1": OLD_SECRET}, "key_id": "k9"}, "audit.key_id", "'k9'"),
    ],
)
def test_bad_key_settings_stop_the_start_naming_the_key(
    audit: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words) as caught:
        DynamicModelRegistry(settings=Settings().with_overrides(audit=audit))
    assert caught.value.details["key"] == key


@pytest.mark.parametrize("content", ["not json", "[]", '{"keys": {"k1": "short"}}'])
def test_a_broken_key_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError):
        read_key_file(path)


def test_pending_entries_are_signed_with_the_current_key(tmp_path: Path) -> None:
    registry = keyed(f"sqlite:///{tmp_path / 'p.sqlite3'}", {"k1": OLD_SECRET})
    write(registry, 2)
    assert [h.split(":")[0] for h in stored_hashes(registry, audit_outbox.c.entry_hash)] == [
        "k1", "k1"]
    assert registry.audit_logger.verify()["pending_signers"] == {"k1": 2}
    registry.close()
