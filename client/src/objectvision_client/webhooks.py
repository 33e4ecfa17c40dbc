"""Checking that a webhook delivery came from ObjectVision, for the receiving end.

A delivery carries `X-ObjectVision-Timestamp` and `X-ObjectVision-Signature`:
`v1=hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))`, one such value per secret that
signs it, comma-separated (two while a rotated-out secret still signs, ADR 0036). A receiver
accepts the delivery when one of them is its secret's, and the timestamp is recent enough
that a recorded delivery cannot be replayed later.

    from objectvision_client.webhooks import verify

    if not verify(secret, timestamp=request.headers["X-ObjectVision-Timestamp"],
                  signature=request.headers["X-ObjectVision-Signature"], body=raw_body):
        return 400
"""

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"
# How old a delivery's timestamp may be (or how far ahead, for a fast clock) by default.
DEFAULT_TOLERANCE_SECONDS = 300


def verify(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `body` with these header values was signed with `secret` within
    `tolerance_seconds` of `now`. Compare with the raw body as received: parsing and
    re-serialising JSON changes bytes the signature covers."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - signed_at) > tolerance_seconds:
        return False
    expected = hmac.new(
        secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256
    ).hexdigest()
    offered = (part.strip() for part in signature.split(","))
    return any(
        hmac.compare_digest(value, expected)
        for version, _, value in (part.partition("=") for part in offered)
        if version == SIGNATURE_VERSION
    )
