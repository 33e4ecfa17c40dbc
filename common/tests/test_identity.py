import base64

import pytest

from objectvision.v1 import common_pb2
from objectvision_common.errors import Unauthenticated
from objectvision_common.identity import principal_from_metadata, principal_metadata

SECRET = "test-secret"


def test_a_signed_principal_round_trips() -> None:
    principal = common_pb2.Principal(user_id="u-1", is_admin=True, auth_method="jwt")
    metadata = principal_metadata(principal, secret=SECRET)
    assert principal_from_metadata(metadata, secret=SECRET) == principal


def test_a_principal_signed_with_another_secret_is_refused() -> None:
    metadata = principal_metadata(common_pb2.Principal(user_id="u-1"), secret="other")
    with pytest.raises(Unauthenticated):
        principal_from_metadata(metadata, secret=SECRET)


def test_a_tampered_principal_is_refused() -> None:
    (header, payload), signature = principal_metadata(
        common_pb2.Principal(user_id="u-1"), secret=SECRET
    )
    forged = common_pb2.Principal(user_id="u-2", is_admin=True).SerializeToString()
    expires = payload.split(".", 1)[0]
    tampered = f"{expires}.{base64.urlsafe_b64encode(forged).decode()}"
    with pytest.raises(Unauthenticated):
        principal_from_metadata(((header, tampered), signature), secret=SECRET)


def test_an_expired_principal_is_refused() -> None:
    metadata = principal_metadata(common_pb2.Principal(user_id="u-1"), secret=SECRET, now=1000.0)
    with pytest.raises(Unauthenticated):
        principal_from_metadata(metadata, secret=SECRET, now=2000.0)


def test_a_call_without_a_principal_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        principal_from_metadata((("x-request-id", "abc"),), secret=SECRET)
