"""The Ed25519 key that signs access tokens, and its public half as a JWK."""

import base64
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auth_service.config import AuthSettings

logger = logging.getLogger(__name__)

ALGORITHM = "EdDSA"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """A private key with its key id (RFC 7638 thumbprint, so it is stable and derivable)."""

    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> "SigningKey":
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        # RFC 7638: the required members only, sorted, no whitespace.
        canonical = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":")
        )
        return cls(
            private_key=private_key, kid=_b64url(hashlib.sha256(canonical.encode()).digest())
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError("the JWT private key must be an Ed25519 key (tokens are EdDSA)")
        return cls.from_private_key(private_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def load_signing_key(settings: AuthSettings) -> SigningKey:
    """The configured key, else one generated once and kept under the data directory.

    A generated key belongs to one machine: replicas would each sign with their own key, so
    production must configure JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE.
    """
    if settings.jwt_private_key is not None:
        # An environment variable often carries the PEM with literal "\n" escapes.
        pem = settings.jwt_private_key.get_secret_value().replace("\\n", "\n")
        return SigningKey.from_pem(pem.encode())
    if settings.jwt_private_key_file is not None:
        return SigningKey.from_pem(settings.jwt_private_key_file.read_bytes())
    if settings.is_production:
        raise RuntimeError(
            "set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE in production: a generated key "
            "would differ between replicas and disappear with the machine"
        )
    return _load_or_generate(settings.generated_key_path)


def _load_or_generate(path: Path) -> SigningKey:
    if path.exists():
        if path.stat().st_mode & 0o077:
            logger.warning(
                "JWT key file is readable by others; chmod 600 it", extra={"path": str(path)}
            )
        return SigningKey.from_pem(path.read_bytes())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    # Write a private temporary file, then link it into place: a concurrent starter either
    # wins the link or reads the complete file the winner linked.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-key-")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.private_pem())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return SigningKey.from_pem(path.read_bytes())
    finally:
        os.unlink(temporary)
    logger.info("generated a development JWT signing key", extra={"path": str(path)})
    return key
