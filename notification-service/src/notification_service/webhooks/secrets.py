"""Webhook signing secrets: generated once, shown once, stored encrypted, used to sign.

The secret must be stored recoverably (a hash would not let us sign), so it is encrypted
with Fernet (AES-128-CBC + HMAC-SHA256) under WEBHOOK_SECRET_KEY: a database dump alone
does not let anyone forge our signatures.
"""

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from objectvision_common.sealing import SecretBox

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNATURE_VERSION = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_box(webhook_secret_key: str) -> SecretBox:
    """The box the signing secrets (and queued emails) are stored sealed in."""
    return SecretBox.from_setting(webhook_secret_key, setting="WEBHOOK_SECRET_KEY")


def signature(secrets_now: Sequence[str], timestamp: int, body: bytes) -> str:
    """The X-ObjectVision-Signature value: v1=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))
    for each secret that signs now, comma-separated (two while a rotation's previous secret
    still signs, ADR 0036); a receiver accepts the delivery if any of them is its own."""
    return ",".join(
        f"{SIGNATURE_VERSION}="
        + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        for secret in secrets_now
    )
