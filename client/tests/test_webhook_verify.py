"""`objectvision_client.webhooks.verify`: what a receiver checks before trusting a delivery."""

import hashlib
import hmac

import pytest

from objectvision_client.webhooks import verify

BODY = b'{"id":"evt","type":"job.completed"}'
SIGNED_AT = 1_764_950_000


def v1(secret: str, timestamp: int = SIGNED_AT, body: bytes = BODY) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def check(secret: str, signature: str, *, body: bytes = BODY, now: int = SIGNED_AT, **kw) -> bool:
    return verify(secret, timestamp=str(SIGNED_AT), signature=signature, body=body, now=now, **kw)


def test_one_signature_with_the_receivers_secret_verifies() -> None:
    assert check("whsec_a", v1("whsec_a"))


def test_during_a_rotation_either_secret_verifies_the_two_signatures() -> None:
    both = f"{v1('whsec_new')},{v1('whsec_old')}"
    assert check("whsec_new", both) and check("whsec_old", both)
    assert not check("whsec_other", both)


@pytest.mark.parametrize(
    "signature",
    ["", "v1=", "v2=" + v1("whsec_a")[3:], v1("whsec_a").upper(), "sha256=" + v1("whsec_a")[3:]],
)
def test_malformed_or_other_version_signatures_do_not_verify(signature: str) -> None:
    assert not check("whsec_a", signature)


def test_a_changed_body_does_not_verify() -> None:
    assert not check("whsec_a", v1("whsec_a"), body=BODY + b" ")


def test_a_timestamp_outside_the_tolerance_does_not_verify() -> None:
    assert check("whsec_a", v1("whsec_a"), now=SIGNED_AT + 300)
    assert not check("whsec_a", v1("whsec_a"), now=SIGNED_AT + 301)
    assert not check("whsec_a", v1("whsec_a"), now=SIGNED_AT - 301)
    assert check("whsec_a", v1("whsec_a"), now=SIGNED_AT + 3000, tolerance_seconds=3600)
    assert not verify("whsec_a", timestamp="soon", signature=v1("whsec_a"), body=BODY)
