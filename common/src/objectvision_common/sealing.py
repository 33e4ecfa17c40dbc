"""Sealing secrets that must be kept recoverably: encrypted and authenticated with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`), so a copy of the database, the outbox or
the events stream alone does not give them away.

Two kinds of key material seal things here. notification-service keeps webhook signing
secrets and queued emails under WEBHOOK_SECRET_KEY (`SecretBox.from_setting`). The secret of
an emailed link (a password reset or an email verification token) travels from auth-service
to notification-service inside an event, sealed under a key both derive from
SERVICE_TOKEN_SECRET for that one purpose (`event_secrets`): the services already share that
secret, and HKDF keeps the derived key from being the signing key itself (ADR 0021
amendment).
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FERNET_KEY_BYTES = 32
EVENT_SECRETS_PURPOSE = b"objectvision event secrets v1"


class SecretBox:
    """Seals and opens short texts under one key; `setting` names where the key comes from,
    for the error an operator reads when a sealed text cannot be opened (a changed key)."""

    def __init__(self, key: bytes, *, setting: str) -> None:
        if len(key) != FERNET_KEY_BYTES:
            raise ValueError(f"a sealing key is {FERNET_KEY_BYTES} bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._setting = setting

    @classmethod
    def from_setting(cls, key_material: str, *, setting: str) -> "SecretBox":
        """The key as SHA-256 of a setting's value (how webhook secrets were always sealed,
        so those stored already still open)."""
        if not key_material:
            raise ValueError(f"{setting} must not be empty")
        return cls(hashlib.sha256(key_material.encode()).digest(), setting=setting)

    @classmethod
    def derived(cls, key_material: str, *, purpose: bytes, setting: str) -> "SecretBox":
        """A key for one `purpose` derived from a shared secret with HKDF-SHA256, unrelated
        to the secret's other uses."""
        if not key_material:
            raise ValueError(f"{setting} must not be empty")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=FERNET_KEY_BYTES, salt=None, info=purpose)
        return cls(hkdf.derive(key_material.encode()), setting=setting)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The text `seal` was given; ValueError when this key did not seal it (or the text
        was altered)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(f"cannot be decrypted with the configured {self._setting}") from exc


def event_secrets(service_token_secret: str) -> SecretBox:
    """The box auth-service seals an emailed link's token with in its event, and
    notification-service opens it with to write the email."""
    return SecretBox.derived(
        service_token_secret, purpose=EVENT_SECRETS_PURPOSE, setting="SERVICE_TOKEN_SECRET"
    )
