"""API keys: shown once, stored as SHA-256, usable until revoked."""

import hashlib
import uuid

import grpc

from objectvision.v1 import auth_pb2


async def create_key(auth, account, name: str = "ci") -> auth_pb2.CreatedApiKey:
    return await auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=name), metadata=account.metadata
    )


async def test_create_api_key_returns_the_secret_once_in_the_documented_format(auth, accounts):
    account = await accounts.create()

    created = await create_key(auth, account, name="nightly export")

    scheme, prefix, secret = created.secret.split("_", 2)
    assert (scheme, len(prefix)) == ("ov", 8)
    assert len(secret) >= 43
    assert created.key.prefix == f"ov_{prefix}"
    assert created.key.name == "nightly export"
    assert created.key.HasField("created_at")
    assert not created.key.HasField("revoked_at")
    listed = await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    assert created.secret not in str(listed)


async def test_only_the_sha256_of_an_api_key_is_stored(auth, accounts, database):
    account = await accounts.create()

    created = await create_key(auth, account)

    row = await database.value(
        "SELECT row_to_json(k)::text FROM auth.api_keys k WHERE id = :id", id=created.key.id
    )
    stored_hash = await database.value(
        "SELECT key_hash FROM auth.api_keys WHERE id = :id", id=created.key.id
    )
    assert created.secret not in row
    assert created.secret.split("_", 2)[2] not in row
    assert stored_hash == hashlib.sha256(created.secret.encode()).hexdigest()


async def test_an_api_key_authenticates_as_its_owner(auth, accounts):
    account = await accounts.create()
    created = await create_key(auth, account)

    principal = await auth.AuthenticateApiKey(
        auth_pb2.AuthenticateApiKeyRequest(api_key=created.secret)
    )

    assert principal.user_id == account.id
    assert principal.auth_method == "api_key"
    assert principal.credential_id == created.key.id
    assert principal.is_admin is False


async def test_using_an_api_key_records_when_it_was_last_used(auth, accounts):
    account = await accounts.create()
    created = await create_key(auth, account)

    await auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=created.secret))

    [listed] = (
        await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    ).keys
    assert listed.HasField("last_used_at")


async def test_list_api_keys_shows_only_the_callers_keys_newest_first(auth, accounts):
    alice = await accounts.create()
    bob = await accounts.create()
    first = await create_key(auth, alice, name="first")
    second = await create_key(auth, alice, name="second")
    await create_key(auth, bob, name="bob's")

    listed = await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=alice.metadata)

    assert [key.id for key in listed.keys] == [second.key.id, first.key.id]


async def test_a_revoked_api_key_no_longer_authenticates(auth, accounts, rejected):
    account = await accounts.create()
    created = await create_key(auth, account)

    await auth.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(key_id=created.key.id), metadata=account.metadata
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=created.secret)),
    )
    [listed] = (
        await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    ).keys
    assert listed.HasField("revoked_at")


async def test_revoking_another_users_api_key_is_not_found_and_leaves_it_working(
    auth, accounts, rejected
):
    alice = await accounts.create()
    bob = await accounts.create()
    bobs_key = await create_key(auth, bob)

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(key_id=bobs_key.key.id), metadata=alice.metadata
        ),
    )
    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(key_id=str(uuid.uuid4())), metadata=alice.metadata
        ),
    )

    await auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=bobs_key.secret))


async def test_an_admin_can_revoke_any_api_key(auth, accounts, rejected):
    admin = await accounts.admin()
    bob = await accounts.create()
    bobs_key = await create_key(auth, bob)

    await auth.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(key_id=bobs_key.key.id), metadata=admin.metadata
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=bobs_key.secret)),
    )


async def test_unknown_or_malformed_api_keys_are_unauthenticated_alike(auth, accounts, rejected):
    account = await accounts.create()
    created = await create_key(auth, account)
    almost = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")

    details = set()
    for candidate in ("", "garbage", "ov_", "ov_12345678_nope", almost):
        error = await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=candidate)),
        )
        details.add(error.details())

    assert len(details) == 1


async def test_an_api_key_of_a_disabled_account_is_unauthenticated(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    created = await create_key(auth, account)
    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=account.id)

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=created.secret)),
    )


async def test_an_api_key_cannot_be_used_to_create_more_api_keys(
    auth, accounts, principal, rejected
):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="escalation"),
            metadata=principal(account.id, auth_method="api_key"),
        ),
    )


async def test_an_api_key_needs_a_name(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="  "), metadata=account.metadata),
    )


async def test_api_key_management_needs_an_authenticated_caller(auth, rejected):
    await rejected(grpc.StatusCode.UNAUTHENTICATED, auth.ListApiKeys(auth_pb2.ListApiKeysRequest()))
