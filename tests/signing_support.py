"""Keys and certificates for signing tests, made with `cryptography`, and signed messages."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.security.certificate import Certificate
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Identity:
    """One service's RSA key and self-signed certificate, as PEM files."""

    name: str
    key: Path
    certificate: Path

    def sign(self, body: Any) -> bytes:
        """`body` ([args, kwargs, embed]) as Celery's auth serializer sends it."""
        signer = SecureSerializer(
            PrivateKey(self.key.read_text()), Certificate(self.certificate.read_text()),
            digest="sha256", serializer="json",
        )
        payload = signer.serialize(body)
        return payload.encode() if isinstance(payload, str) else bytes(payload)


def make_identity(
    folder: Path, name: str, *, valid_days: float = 30, store: Path | None = None
) -> Identity:
    """A 2048-bit RSA key and a certificate for CN=`name`, written to `folder`; the
    certificate is copied into `store` (the workers' trusted certificates) when given."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        (store / f"{name}.pem").write_bytes(cert_path.read_bytes())
    return Identity(name, key_path, cert_path)


def tampered(payload: bytes, old: bytes, new: bytes) -> bytes:
    """A signed payload whose JSON body was changed after signing (signature kept)."""
    raw = base64.b64decode(payload)
    assert old in raw
    return base64.b64encode(raw.replace(old, new))


def json_body(body: Any) -> bytes:
    return json.dumps(body).encode()
