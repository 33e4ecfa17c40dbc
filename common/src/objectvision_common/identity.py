"""The caller's identity as the gateway vouches for it, carried in gRPC metadata.

The gateway authenticates the user (JWT or API key) and forwards a `Principal` with an
HMAC signature under the shared service secret and a short expiry, so an internal caller
without the secret cannot claim to be someone else.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable

from objectvision.v1 import common_pb2
from objectvision_common.errors import Unauthenticated

PRINCIPAL_HEADER = "x-principal"
PRINCIPAL_SIGNATURE_HEADER = "x-principal-signature"
_LIFETIME_SECONDS = 300


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def principal_metadata(
    principal: common_pb2.Principal, *, secret: str, now: float | None = None
) -> tuple[tuple[str, str], ...]:
    expires = int((now or time.time()) + _LIFETIME_SECONDS)
    body = base64.urlsafe_b64encode(principal.SerializeToString()).decode()
    payload = f"{expires}.{body}"
    return ((PRINCIPAL_HEADER, payload), (PRINCIPAL_SIGNATURE_HEADER, _sign(secret, payload)))


def principal_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None, *, secret: str, now: float | None = None
) -> common_pb2.Principal:
    """The verified principal of a call; raises Unauthenticated when absent or forged."""
    values = {key: value for key, value in (metadata or ())}
    payload = values.get(PRINCIPAL_HEADER)
    signature = values.get(PRINCIPAL_SIGNATURE_HEADER)
    if not isinstance(payload, str) or not isinstance(signature, str):
        raise Unauthenticated("this call needs an authenticated caller")
    if not hmac.compare_digest(_sign(secret, payload), signature):
        raise Unauthenticated("the caller's identity is not signed by a trusted service")
    expires_text, _, body = payload.partition(".")
    if not expires_text.isdigit() or int(expires_text) < (now or time.time()):
        raise Unauthenticated("the caller's identity has expired")
    principal = common_pb2.Principal()
    principal.ParseFromString(base64.urlsafe_b64decode(body))
    if not principal.user_id:
        raise Unauthenticated("this call needs an authenticated caller")
    return principal
