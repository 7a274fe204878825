"""The worker's trust policy: signed, by a trusted certificate, within its role ceiling."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from registry import ConfigurationError, Settings
from registry.errors import MessageNotTrusted, MessageRefused
from registry.settings import SecuritySettings
from tasks.trust import AUTH_CONTENT_TYPE, TrustPolicy
from tests.signing_support import Identity, json_body, make_identity, tampered
from workers.app import app

app.loader.import_default_modules()


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    root = tmp_path_factory.mktemp("identities")
    store = root / "trusted"
    made = {name: make_identity(root, name, store=store)
            for name in ("crm", "ops-admin", "nobody")}
    made["rogue"] = make_identity(root / "elsewhere", "crm")  # same name, not trusted
    made["store"] = Identity("store", store, store)
    return made


@pytest.fixture(scope="module")
def policy(identities: dict[str, Identity]) -> TrustPolicy:
    crm = identities["crm"]
    security = SecuritySettings(
        signing=True, key=str(crm.key), certificate=str(crm.certificate),
        cert_store=str(identities["store"].key),
        producers={"crm": {"roles": ["user"]},
                   "ops-admin": {"roles": ["admin", "user"], "manage_models": True}},
    )
    return TrustPolicy.for_app(app, security)


def message(name: str, body: bytes, content_type: str = AUTH_CONTENT_TYPE) -> Any:
    return SimpleNamespace(content_type=content_type, body=body,
                           headers={"task": name, "id": str(uuid.uuid4())})


def read_as(role: str) -> list[Any]:
    return [[], {"model": "Product", "record_id": "r1", "user_id": "u", "user_role": role}, {}]


def refused_for(policy: TrustPolicy, sent: Any) -> str:
    refusal = policy.refusal(sent)
    assert isinstance(refusal, MessageNotTrusted) and isinstance(refusal, MessageRefused)
    return str(refusal.details["reason"])


def test_a_message_within_its_signers_ceiling_is_taken(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    assert policy.refusal(message("records.read", identities["crm"].sign(read_as("user")))) is None
    registration = [[], {"name": "P", "schema": {}, "user_role": "admin"}, {}]
    signed = identities["ops-admin"].sign(registration)
    assert policy.refusal(message("registry.register_model", signed)) is None


def test_an_unsigned_message_is_refused(policy: TrustPolicy) -> None:
    sent = message("records.read", json_body(read_as("user")), content_type="application/json")
    assert "not signed" in refused_for(policy, sent)


def test_a_certificate_the_worker_does_not_trust_is_refused(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    sent = message("records.read", identities["rogue"].sign(read_as("user")))
    assert "does not trust" in refused_for(policy, sent)


def test_a_body_changed_after_signing_is_refused(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    signed = identities["crm"].sign(read_as("user"))
    sent = message("records.read", tampered(signed, b'"user_role": "user"',
                                            b'"user_role": "admin"'))
    assert "signature does not verify" in refused_for(policy, sent)


def test_garbage_in_the_signed_format_is_refused(policy: TrustPolicy) -> None:
    for body in (b"", b"not base64 at all!", b"aGVsbG8=", b"\xff\xfe"):
        assert "signed (auth) format" in refused_for(policy, message("records.read", body))


def test_a_role_over_the_ceiling_is_refused_by_keyword_and_by_position(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    crm = identities["crm"]
    reason = refused_for(policy, message("records.read", crm.sign(read_as("admin"))))
    assert "'crm' may not claim role 'admin'" in reason and "its roles: user" in reason
    positional = [["Product", "r1", "u", "admin"], {}, {}]  # model, record_id, user_id, role
    assert "may not claim role 'admin'" in refused_for(
        policy, message("records.read", crm.sign(positional)))


def test_changing_models_needs_the_management_right(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    for name in ("registry.register_model", "registry.set_permissions"):
        sent = message(name, identities["crm"].sign([[], {"user_role": "user"}, {}]))
        assert "may not change models or permissions" in refused_for(policy, sent)


def test_a_signer_without_a_producer_entry_is_refused(
    policy: TrustPolicy, identities: dict[str, Identity]
) -> None:
    sent = message("records.read", identities["nobody"].sign(read_as("user")))
    assert "'nobody' has no entry" in refused_for(policy, sent)


def test_an_expired_certificate_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "trusted"
    old = make_identity(tmp_path, "old", valid_days=-0.5, store=store)
    security = SecuritySettings(signing=True, key=str(old.key), certificate=str(old.certificate),
                                cert_store=str(store), producers={"old": {"roles": ["*"]}})
    policy = TrustPolicy.for_app(app, security)
    assert "expired" in refused_for(policy, message("records.read", old.sign(read_as("user"))))


def test_signing_needs_its_files_and_a_readable_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="security") as caught:
        Settings().with_overrides(security={"signing": True})
    assert "key, certificate, cert_store" in caught.value.message
    empty = tmp_path / "empty"
    empty.mkdir()
    security = SecuritySettings(signing=True, key="k", certificate="c", cert_store=str(empty))
    with pytest.raises(ConfigurationError, match="No trusted certificates"):
        TrustPolicy.for_app(app, security)
