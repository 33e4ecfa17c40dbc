"""Rotating the JWT signing key logs nobody out: the keys of JWT_VERIFY_ONLY_PUBLIC_KEYS (the
previous signing key until its tokens expire, the next one before it signs) are published in
the JWKS and accepted wherever the service reads an access token, and once a key is removed
its tokens are refused. A key that cannot be one of them stops the service at start.

Each test starts the service again beside the session's, on the same database and Redis,
with the keys a step of the rotation (docs/runbooks.md) configures; the session's service,
which signs with `signing_key`, is the deployment before the rotation.
"""

from collections.abc import Sequence

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import empty_pb2
from pydantic import SecretStr, ValidationError

from auth_service.config import AuthSettings
from auth_service.server import runner
from auth_service.tokens.keys import SigningKey
from objectvision.v1 import auth_pb2, auth_pb2_grpc, common_pb2

from .conftest import started


def new_key() -> SigningKey:
    return SigningKey.from_private_key(Ed25519PrivateKey.generate())


def configured(
    settings: AuthSettings, *, signing: SigningKey, verify_only: Sequence[SigningKey] = ()
) -> AuthSettings:
    """The session's settings with `signing` signing and the public halves of `verify_only`
    in JWT_VERIFY_ONLY_PUBLIC_KEYS, one PEM block after another."""
    return settings.model_copy(
        update={
            "jwt_private_key": SecretStr(signing.private_pem().decode()),
            "jwt_verify_only_public_keys": "".join(key.public_pem().decode() for key in verify_only)
            or None,
        }
    )


def key_id(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def verify(auth: auth_pb2_grpc.AuthServiceStub, token: str) -> common_pb2.Principal:
    return await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=token))


async def test_after_a_rotation_a_token_of_the_previous_key_verifies_and_its_key_is_published(
    accounts, settings, signing_key
):
    account = await accounts.create()
    before = await accounts.login(account)
    next_key = new_key()

    async with started(configured(settings, signing=next_key, verify_only=[signing_key])) as auth:
        principal = await verify(auth, before.access_token)
        jwks = await auth.GetJwks(empty_pb2.Empty())
        after = await auth.Login(
            auth_pb2.LoginRequest(email=account.email, password=account.password)
        )

    assert key_id(before.access_token) == signing_key.kid
    assert principal.user_id == account.id
    assert [key.kid for key in jwks.keys] == [next_key.kid, signing_key.kid]
    assert all(
        (key.kty, key.crv, key.alg, key.use) == ("OKP", "Ed25519", "EdDSA", "sig")
        for key in jwks.keys
    )
    assert key_id(after.access_token) == next_key.kid


async def test_the_published_previous_key_alone_verifies_its_tokens(
    accounts, settings, signing_key
):
    before = await accounts.login(await accounts.create())

    async with started(configured(settings, signing=new_key(), verify_only=[signing_key])) as auth:
        jwks = await auth.GetJwks(empty_pb2.Empty())

    [previous] = [key for key in jwks.keys if key.kid == signing_key.kid]
    claims = jwt.decode(
        before.access_token,
        jwt.PyJWK({"kty": previous.kty, "crv": previous.crv, "x": previous.x}, algorithm="EdDSA"),
        algorithms=["EdDSA"],
        audience=jwks.audience,
        issuer=jwks.issuer,
    )
    assert claims["typ"] == "access"


async def test_a_session_whose_token_the_previous_key_signed_logs_out_after_the_rotation(
    accounts, settings, signing_key, rejected
):
    before = await accounts.login(await accounts.create())

    async with started(configured(settings, signing=new_key(), verify_only=[signing_key])) as auth:
        await auth.Logout(
            auth_pb2.LogoutRequest(
                access_token=before.access_token, refresh_token=before.refresh_token
            )
        )
        error = await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, before.access_token))

    assert "revoked" in error.details()


async def test_once_the_previous_key_is_removed_its_tokens_are_refused(
    accounts, settings, signing_key, rejected
):
    before = await accounts.login(await accounts.create())
    next_key = new_key()

    async with started(configured(settings, signing=next_key)) as auth:
        await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, before.access_token))
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.Logout(auth_pb2.LogoutRequest(access_token=before.access_token)),
        )
        jwks = await auth.GetJwks(empty_pb2.Empty())

    assert [key.kid for key in jwks.keys] == [next_key.kid]


async def test_a_next_key_published_before_it_signs_is_accepted_but_signs_nothing(
    auth, accounts, settings, signing_key, forge, rejected
):
    account = await accounts.create()
    next_key = new_key()
    token_of_the_next_key = forge.sign(forge.claims(account.id), key=next_key)

    async with started(
        configured(settings, signing=signing_key, verify_only=[next_key])
    ) as published:
        principal = await verify(published, token_of_the_next_key)
        signed = await published.Login(
            auth_pb2.LoginRequest(email=account.email, password=account.password)
        )

    assert principal.user_id == account.id
    assert key_id(signed.access_token) == signing_key.kid
    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, token_of_the_next_key))


async def test_several_verify_only_keys_can_come_from_a_file(accounts, settings, forge, tmp_path):
    account = await accounts.create()
    older, previous, current = new_key(), new_key(), new_key()
    keys_file = tmp_path / "verify-only.pem"
    keys_file.write_bytes(older.public_pem() + b"\n" + previous.public_pem())
    file_settings = configured(settings, signing=current).model_copy(
        update={"jwt_verify_only_public_keys_file": keys_file}
    )

    async with started(file_settings) as auth:
        principals = [
            await verify(auth, forge.sign(forge.claims(account.id), key=key))
            for key in (older, previous, current)
        ]
        jwks = await auth.GetJwks(empty_pb2.Empty())

    assert [principal.user_id for principal in principals] == [account.id] * 3
    assert [key.kid for key in jwks.keys] == [current.kid, older.kid, previous.kid]


def _ec_public_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


DAMAGED_PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"

# What follows a good verify-only key in JWT_VERIFY_ONLY_PUBLIC_KEYS, given the signing key
# and that good key's PEM, and what the refusal says.
BAD_VERIFY_ONLY_KEYS = {
    "an EC key": (lambda signing, good: _ec_public_key(), "key 2 of .* not an Ed25519 key"),
    "the signing key itself": (
        lambda signing, good: signing.public_pem().decode(),
        "lists the signing key's own public key",
    ),
    "a private key": (
        lambda signing, good: new_key().private_pem().decode(),
        "key 2 of .* is a PRIVATE KEY, not a PUBLIC KEY",
    ),
    "a damaged key": (lambda signing, good: DAMAGED_PEM, "key 2 of .* not a readable public key"),
    "the same key twice": (lambda signing, good: good, "the same public key twice"),
    "text around the keys": (lambda signing, good: "retired on Monday", "text outside"),
}


@pytest.mark.parametrize("bad", BAD_VERIFY_ONLY_KEYS.values(), ids=BAD_VERIFY_ONLY_KEYS.keys())
async def test_a_verify_only_key_that_cannot_be_one_stops_the_service_at_start(
    settings, signing_key, bad
):
    then, message = bad
    good = new_key().public_pem().decode()
    bad_settings = settings.model_copy(
        update={"jwt_verify_only_public_keys": good + then(signing_key, good)}
    )

    with pytest.raises(ValueError, match=message):
        await runner().app(bad_settings)


async def test_a_verify_only_setting_without_a_key_stops_the_service_at_start(settings):
    bad_settings = settings.model_copy(update={"jwt_verify_only_public_keys": "the old key"})

    with pytest.raises(ValueError, match="holds no PEM public key"):
        await runner().app(bad_settings)


def test_verify_only_keys_come_from_the_variable_or_the_file_not_both(tmp_path):
    with pytest.raises(ValidationError, match="not both"):
        AuthSettings(
            _env_file=None,
            JWT_VERIFY_ONLY_PUBLIC_KEYS=new_key().public_pem().decode(),
            JWT_VERIFY_ONLY_PUBLIC_KEYS_FILE=tmp_path / "verify-only.pem",
        )


def test_empty_verify_only_variables_mean_no_such_keys():
    settings = AuthSettings(
        _env_file=None, JWT_VERIFY_ONLY_PUBLIC_KEYS=" ", JWT_VERIFY_ONLY_PUBLIC_KEYS_FILE=""
    )

    assert settings.jwt_verify_only_public_keys is None
    assert settings.jwt_verify_only_public_keys_file is None
