"""The Ed25519 key that signs access tokens, the public keys that only verify them (a key
rotation's previous and next keys), and their public halves as JWKs."""

import base64
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auth_service.config import AuthSettings

logger = logging.getLogger(__name__)

ALGORITHM = "EdDSA"

# One PEM block (RFC 7468): its label, and the whole block from BEGIN to the matching END.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_PUBLIC_KEY_LABEL = "PUBLIC KEY"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class VerificationKey:
    """A public key that verifies access tokens, with its key id: the RFC 7638 thumbprint of
    its JWK, so the same key has the same id wherever it is derived (here and in the JWKS)."""

    public_key: Ed25519PublicKey
    kid: str

    @classmethod
    def from_public_key(cls, public_key: Ed25519PublicKey) -> "VerificationKey":
        # RFC 7638: the required members only, sorted, no whitespace.
        canonical = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(public_key))},
            separators=(",", ":"),
        )
        return cls(public_key=public_key, kid=_b64url(hashlib.sha256(canonical.encode()).digest()))

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(_raw(self.public_key)),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    """A private key with its key id (RFC 7638 thumbprint, so it is stable and derivable)."""

    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> "SigningKey":
        public = VerificationKey.from_public_key(private_key.public_key())
        return cls(private_key=private_key, kid=public.kid)

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError("the JWT private key must be an Ed25519 key (tokens are EdDSA)")
        return cls.from_private_key(private_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def verification_key(self) -> VerificationKey:
        return VerificationKey(public_key=self.public_key, kid=self.kid)

    def public_jwk(self) -> dict[str, str]:
        return self.verification_key.public_jwk()

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        """The public half as PEM, as JWT_VERIFY_ONLY_PUBLIC_KEYS takes it after a rotation."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
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


def load_verify_only_keys(
    settings: AuthSettings, signing_key: SigningKey
) -> tuple[VerificationKey, ...]:
    """The public keys of JWT_VERIFY_ONLY_PUBLIC_KEYS[_FILE]: published in the JWKS and
    accepted beside the signing key, never used to sign.

    They are what makes a key rotation log nobody out: the previous signing key stays here
    until the last token it signed has expired, and the next one can be published here before
    any replica signs with it (docs/runbooks.md, "Rotating the JWT signing key"). Anything
    that is not an Ed25519 public key, a key listed twice, or the signing key itself stops
    the service at start: each is a mistake in the rotation that would otherwise show up
    only as refused tokens.
    """
    if settings.jwt_verify_only_public_keys is not None:
        source = "JWT_VERIFY_ONLY_PUBLIC_KEYS"
        # An environment variable often carries the PEM with literal "\n" escapes.
        text = settings.jwt_verify_only_public_keys.replace("\\n", "\n")
    elif settings.jwt_verify_only_public_keys_file is not None:
        path = settings.jwt_verify_only_public_keys_file
        source = f"JWT_VERIFY_ONLY_PUBLIC_KEYS_FILE ({path})"
        text = path.read_text()
    else:
        return ()
    keys = _parse_public_keys(text, source=source)
    kids = [key.kid for key in keys]
    if signing_key.kid in kids:
        raise ValueError(
            f"{source} lists the signing key's own public key (kid {signing_key.kid}); list "
            "only keys that no longer sign, or do not sign yet"
        )
    if len(set(kids)) != len(kids):
        raise ValueError(f"{source} lists the same public key twice")
    logger.info(
        "access tokens of verify-only keys are accepted",
        extra={"signing_key_id": signing_key.kid, "verify_only_key_ids": kids},
    )
    return tuple(keys)


def _parse_public_keys(text: str, *, source: str) -> Sequence[VerificationKey]:
    """Every PEM block of `text`, each an Ed25519 public key; ValueError naming `source` and
    the block otherwise."""
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise ValueError(f"{source} holds no PEM public key (-----BEGIN PUBLIC KEY-----)")
    if _PEM_BLOCK.sub("", text).strip():
        raise ValueError(f"{source} holds text outside its PEM blocks")
    keys = []
    for number, block in enumerate(blocks, start=1):
        label = block.group(1)
        if label != _PUBLIC_KEY_LABEL:
            raise ValueError(
                f"key {number} of {source} is a {label}, not a PUBLIC KEY: give the public "
                "half only (openssl pkey -in private-key.pem -pubout)"
            )
        try:
            public_key = serialization.load_pem_public_key(block.group(0).encode())
        except ValueError as exc:
            raise ValueError(f"key {number} of {source} is not a readable public key") from exc
        if not isinstance(public_key, Ed25519PublicKey):
            raise ValueError(
                f"key {number} of {source} is not an Ed25519 key (access tokens are EdDSA)"
            )
        keys.append(VerificationKey.from_public_key(public_key))
    return keys


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
