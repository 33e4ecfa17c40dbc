"""Webhook signing secrets: generated once, shown once, stored encrypted, used to sign.

The secret must be stored recoverably (a hash would not let us sign), so it is encrypted
with Fernet (AES-128-CBC + HMAC-SHA256) under WEBHOOK_SECRET_KEY: a database dump alone
does not let anyone forge our signatures.
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNATURE_VERSION = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretBox:
    """Encrypts and decrypts stored secrets with a key derived from WEBHOOK_SECRET_KEY."""

    def __init__(self, key_material: str) -> None:
        if not key_material:
            raise ValueError("WEBHOOK_SECRET_KEY must not be empty")
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot be decrypted with the configured WEBHOOK_SECRET_KEY") from exc


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ObjectVision-Signature value: v1=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"
