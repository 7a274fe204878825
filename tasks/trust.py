"""Who may send what: signed task messages, and the roles each signer may claim.

With `[security] signing = true`, every process that sends tasks signs them with Celery's own
message signing: its `auth` serializer, over JSON, with the process's RSA key and certificate
(`enable_signing`). A worker then takes a task message only when (`TrustPolicy.refusal`):

1. it is signed: content type `application/data`, in Celery's auth format;
2. by a certificate in the worker's `cert_store`, unexpired, and the signature verifies over
   the exact JSON body;
3. the certificate's common name has an entry in `[security.producers]` whose `roles` hold
   the `user_role` the message claims (its role ceiling), and whose `manage_models` is true
   when the task changes models or permissions (`MANAGEMENT_TASKS`).

Otherwise the worker refuses the message before Celery builds a request from it, with
`MessageNotTrusted`: nothing runs, nothing is written, the message is dropped (not
redelivered), and the producer's `.get()` raises the error. Signing proves who sent a message;
it does not hide it: the broker still sees the JSON.
"""

from __future__ import annotations

import binascii
import datetime
import glob
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.exceptions import SecurityError
from celery.security.certificate import Certificate
from celery.security.utils import get_digest_algorithm
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from registry.errors import ConfigurationError, MessageNotTrusted
from registry.settings import SecuritySettings

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "AUTH_CONTENT_TYPE",
    "MANAGEMENT_TASKS",
    "TrustPolicy",
    "enable_signing",
    "signing_config",
]

#: The content type of Celery's `auth` serializer.
AUTH_CONTENT_TYPE = "application/data"
JSON = "application/json"
#: Tasks that change models or permissions: a signer needs `manage_models` to send them.
MANAGEMENT_TASKS = frozenset(
    {"registry.register_model", "registry.set_permissions", "cqrs.define_projection"}
)
#: The separator of the fields of Celery's auth payload (celery.security.serialization).
_SEPARATOR = b"\x00\x01"


def signing_config(security: SecuritySettings) -> dict[str, Any]:
    """The Celery settings that make an app sign what it sends and accept only signed tasks."""
    return {
        "task_serializer": "auth",
        "accept_content": ["auth"],
        "security_key": security.key,
        "security_key_password": (
            security.key_password.get_secret_value().encode() if security.key_password else None
        ),
        "security_certificate": security.certificate,
        "security_cert_store": security.cert_store,
        "security_digest": security.digest,
    }


def enable_signing(app: Celery, security: SecuritySettings) -> None:
    """Sign every task `app` sends with this process's key (Celery's `setup_security`, which
    registers the `auth` serializer for the whole process). Raises `ConfigurationError` when
    the key or certificate cannot be read."""
    app.conf.update(signing_config(security))
    try:
        app.setup_security(allowed_serializers=["json"], digest=security.digest)
    except (OSError, SecurityError, ValueError) as exc:
        raise ConfigurationError(
            f"Message signing cannot start: {exc}.", key="security"
        ) from None


@dataclass(frozen=True)
class _Signer:
    """A trusted certificate, and the name its producer entry is found by."""

    certificate: x509.Certificate
    common_name: str

    def problem(self, body: bytes, signature: bytes, digest: hashes.HashAlgorithm) -> str | None:
        """Why `signature` is not this certificate's over `body`, or None.

        Checked here with `cryptography`, the way Celery signs (RSA-PSS, MGF1, longest
        salt): Celery's own check turns a bad signature into a TypeError in this version.
        """
        if datetime.datetime.now(datetime.UTC) >= self.certificate.not_valid_after_utc:
            return f"its signer's certificate ({self.common_name!r}) expired"
        public_key = self.certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)  # checked when the store was read
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.MAX_LENGTH)
        try:
            public_key.verify(signature, body, pss, digest)
        except InvalidSignature:
            return "its signature does not verify: it was changed after signing"
        return None


class TrustPolicy:
    """The worker's side of signing: which certificates it trusts and what each may claim."""

    def __init__(self, security: SecuritySettings, task_signatures: Mapping[str, Any]) -> None:
        self.producers = security.producers
        self.digest = get_digest_algorithm(security.digest)
        self.signers = _load_store(str(security.cert_store))
        #: Task name -> `inspect.Signature` of its run method, to find a positional role.
        self.task_signatures = task_signatures

    @classmethod
    def for_app(cls, app: Celery, security: SecuritySettings) -> TrustPolicy:
        signatures = {name: inspect.signature(task.run) for name, task in app.tasks.items()}
        return cls(security, signatures)

    def refusal(self, message: Any) -> MessageNotTrusted | None:
        """Why the worker may not take `message`, or None when its signer may send it."""
        name = _task_name(message)
        if getattr(message, "content_type", None) != AUTH_CONTENT_TYPE:
            return _refused(name, "it is not signed, and this worker takes signed messages "
                                  "only")
        fields = _unpack(getattr(message, "body", b""))
        if fields is None:
            return _refused(name, "it is not a message in Celery's signed (auth) format")
        signer_id, signature, content_type, body = fields
        signer = self.signers.get(signer_id)
        if signer is None:
            return _refused(name, "it is signed by a certificate this worker does not trust")
        problem = signer.problem(body, signature, self.digest)
        if problem is not None:
            return _refused(name, problem, signer=signer.common_name)
        if content_type != JSON:
            return _refused(name, "its signed content is not JSON", signer=signer.common_name)
        return self._ceiling_refusal(name, signer.common_name, body)

    def _ceiling_refusal(
        self, name: str | None, signer: str, body: bytes
    ) -> MessageNotTrusted | None:
        producer = self.producers.get(signer)
        if producer is None:
            return _refused(name, f"its signer {signer!r} has no entry in [security.producers]",
                            signer=signer)
        if name in MANAGEMENT_TASKS and not producer.manage_models:
            return _refused(name, f"its signer {signer!r} may not change models or "
                                  "permissions", signer=signer)
        role = self._claimed_role(name, body)
        if role is not None and not producer.may_claim(role):
            return _refused(name, f"its signer {signer!r} may not claim role {role!r} "
                                  f"(its roles: {', '.join(producer.roles) or 'none'})",
                            signer=signer, role=role)
        return None

    def _claimed_role(self, name: str | None, body: bytes) -> str | None:
        """The `user_role` the message claims, by keyword or by position; None when it
        claims none or its arguments do not fit (the task then refuses them itself)."""
        try:
            args, kwargs, _embed = json.loads(body)
            signature = self.task_signatures.get(name or "")
            bound = (signature.bind_partial(*args, **kwargs).arguments if signature
                     else dict(kwargs))
        except (ValueError, TypeError, RecursionError):
            return None  # the worker's message checks refuse a body of the wrong shape
        role = bound.get("user_role")
        return role if isinstance(role, str) else None


def _refused(name: str | None, reason: str, **details: Any) -> MessageNotTrusted:
    shown = repr(name) if name else "an unnamed task"
    return MessageNotTrusted(
        f"The worker refused the message for {shown}: {reason}. It was dropped, not retried.",
        task=name,
        reason=reason,
        **details,
    )


def _task_name(message: Any) -> str | None:
    headers = getattr(message, "headers", None)
    name = headers.get("task") if isinstance(headers, Mapping) else None
    return name if isinstance(name, str) else None


def _unpack(payload: Any) -> tuple[str, bytes, str, bytes] | None:
    """Celery's auth payload: base64 of signer, signature, content type, encoding and body,
    each but the last base64 too, joined by a separator the body never holds."""
    try:
        raw = binascii.a2b_base64(payload)
        signer, signature, content_type, _encoding, body = raw.split(_SEPARATOR, 4)
        return (binascii.a2b_base64(signer).decode(), binascii.a2b_base64(signature),
                content_type.decode(), body)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


def _load_store(path: str) -> dict[str, _Signer]:
    """The trusted certificates by Celery's signer id ("<issuer> <serial>")."""
    root = Path(path)
    files = sorted(root.iterdir()) if root.is_dir() else sorted(map(Path, glob.glob(path)))
    signers: dict[str, _Signer] = {}
    for file in files:
        pem = file.read_bytes()
        try:
            signer_id = Certificate(pem.decode()).get_id()  # Celery's id: issuer and serial
            parsed = x509.load_pem_x509_certificate(pem)
        except (SecurityError, ValueError) as exc:  # Celery takes RSA certificates only
            raise ConfigurationError(
                f"Trusted certificate {str(file)!r} cannot be used: {exc}.",
                key="security.cert_store",
            ) from None
        names = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        signers[signer_id] = _Signer(parsed, str(names[0].value) if names else "")
    if not signers:
        raise ConfigurationError(
            f"No trusted certificates found at {path!r}.", key="security.cert_store"
        )
    return signers
