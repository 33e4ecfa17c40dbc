"""API keys: shown once, stored as SHA-256, usable until revoked or expired, each with the
scopes it was created with (ADR 0026)."""

import hashlib
import uuid
from datetime import timedelta

import grpc
from google.protobuf import json_format
from sqlalchemy import create_engine, text

from auth_service.database import SCHEMA
from auth_service.server import MIGRATIONS_DIR
from objectvision.v1 import auth_pb2, notification_pb2
from objectvision_common.api_keys import ALL_SCOPES, MAX_KEYS_IN_USE, MAX_PAST_KEYS_LISTED
from objectvision_common.db import sync_url, upgrade_to, upgrade_to_head
from objectvision_devstack.databases import fresh_database

EVERY_SCOPE = [scope.value for scope in ALL_SCOPES]


async def create_key(auth, account, name: str = "ci", **options) -> auth_pb2.CreatedApiKey:
    return await auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=name, **options), metadata=account.metadata
    )


def authenticate(auth, secret: str):
    return auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=secret))


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


async def revocations(database, key_id: str) -> list[notification_pb2.Event]:
    """The `api_key.revoked` events staged for the key, as the relay would publish them."""
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = 'api_key.revoked'"
        " AND payload->'apiKeyRevoked'->>'keyId' = :key_id ORDER BY created_at",
        key_id=key_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def test_revoking_a_key_stages_exactly_one_api_key_revoked_event_for_its_owner(
    auth, accounts, database
):
    """notification-service deletes the webhooks the key registered when it reads the event
    (ADR 0026, amendment); revoking again, by the owner or an admin, announces nothing more."""
    owner = await accounts.create()
    admin = await accounts.admin()
    created = await create_key(auth, owner)
    untouched = await create_key(auth, owner)

    for revoker in (owner, owner, admin):
        await auth.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(key_id=created.key.id), metadata=revoker.metadata
        )

    [event] = await revocations(database, created.key.id)
    assert event.type == "api_key.revoked"
    assert event.user_id == owner.id
    assert event.api_key_revoked.key_id == created.key.id
    [listed] = [
        key
        for key in (
            await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=owner.metadata)
        ).keys
        if key.id == created.key.id
    ]
    assert event.occurred_at == listed.revoked_at
    assert await revocations(database, untouched.key.id) == []


async def test_an_admin_revoking_a_key_announces_it_as_the_owners(auth, accounts, database):
    admin = await accounts.admin()
    owner = await accounts.create()
    created = await create_key(auth, owner)

    await auth.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(key_id=created.key.id), metadata=admin.metadata
    )

    [event] = await revocations(database, created.key.id)
    assert event.user_id == owner.id


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


async def test_an_api_key_cannot_manage_the_account_even_here_behind_the_gateway(
    auth, accounts, principal, rejected
):
    """The gateway refuses keys on these routes; the service refuses them too (ADR 0026)."""
    account = await accounts.create()
    own_key = await create_key(auth, account)
    as_key = principal(account.id, auth_method="api_key")
    calls = {
        "UpdateUser": auth.UpdateUser(
            auth_pb2.UpdateUserRequest(user_id=account.id, name="Taken Over"), metadata=as_key
        ),
        "DeleteAccount": auth.DeleteAccount(
            auth_pb2.DeleteAccountRequest(current_password="guess"), metadata=as_key
        ),
        "UpdateSettings": auth.UpdateSettings(
            auth_pb2.UpdateSettingsRequest(user_id=account.id, notifications_enabled=False),
            metadata=as_key,
        ),
        "ListApiKeys": auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=as_key),
        "RevokeApiKey": auth.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(key_id=own_key.key.id), metadata=as_key
        ),
    }
    for name, call in calls.items():
        error = await rejected(grpc.StatusCode.PERMISSION_DENIED, call)
        assert "signed-in session" in (error.details() or ""), name

    # Nothing changed: the name, the settings and the key are as they were.
    user = await auth.GetUser(
        auth_pb2.GetUserRequest(user_id=account.id), metadata=account.metadata
    )
    assert user.name != "Taken Over"
    settings = await auth.GetSettings(
        auth_pb2.GetSettingsRequest(user_id=account.id), metadata=account.metadata
    )
    assert settings.notifications_enabled
    keys = await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    assert [key.id for key in keys.keys if not key.HasField("revoked_at")] == [own_key.key.id]


async def test_an_api_key_needs_a_name_a_person_can_read(auth, accounts, rejected):
    """Read back in lists, mails and logs, a key's name follows the account name's rules here
    too, not only in the gateway: internal callers reach auth-service directly."""
    account = await accounts.create()

    for name in ("  ", "x" * 101, "ci\x00key", "ci\nkey", "\u202eyek-ic"):
        await rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name=name), metadata=account.metadata),
        )
    keys = await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    assert list(keys.keys) == []


async def test_api_key_management_needs_an_authenticated_caller(auth, rejected):
    await rejected(grpc.StatusCode.UNAUTHENTICATED, auth.ListApiKeys(auth_pb2.ListApiKeysRequest()))


# Scopes


async def test_a_key_has_the_scopes_it_was_created_with_in_list_and_principal(auth, accounts):
    account = await accounts.create()

    created = await create_key(auth, account, scopes=["results:read", "detect", "detect"])

    # Canonical order, no repeats, wherever the key is shown.
    assert list(created.key.scopes) == ["detect", "results:read"]
    [listed] = (
        await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)
    ).keys
    assert list(listed.scopes) == ["detect", "results:read"]
    principal = await authenticate(auth, created.secret)
    assert list(principal.scopes) == ["detect", "results:read"]


async def test_a_key_created_without_scopes_has_every_scope(auth, accounts, database):
    account = await accounts.create()

    created = await create_key(auth, account)

    assert list(created.key.scopes) == EVERY_SCOPE
    assert list((await authenticate(auth, created.secret)).scopes) == EVERY_SCOPE
    stored = await database.value(
        "SELECT scopes FROM auth.api_keys WHERE id = :id", id=created.key.id
    )
    assert stored == EVERY_SCOPE


async def test_an_unknown_scope_is_refused_naming_the_known_ones(
    auth, accounts, database, rejected
):
    account = await accounts.create()

    error = await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        create_key(auth, account, scopes=["detect", "admin"]),
    )

    assert "'admin'" in error.details()
    assert all(scope in error.details() for scope in EVERY_SCOPE)
    assert ("error-code", "unknown_scope") in tuple(error.trailing_metadata())
    assert (
        await database.value(
            "SELECT count(*) FROM auth.api_keys WHERE user_id = :id", id=account.id
        )
        == 0
    )


# Expiry


async def test_a_key_made_to_expire_says_when_in_list_and_principal(auth, accounts):
    account = await accounts.create()

    created = await create_key(auth, account, expires_in_days=30)
    forever = await create_key(auth, account, name="forever")

    lifetime = created.key.expires_at.ToDatetime() - created.key.created_at.ToDatetime()
    assert lifetime == timedelta(days=30)
    assert not forever.key.HasField("expires_at")
    principal = await authenticate(auth, created.secret)
    assert principal.credential_expires_at == created.key.expires_at
    assert not (await authenticate(auth, forever.secret)).HasField("credential_expires_at")


async def test_a_lifetime_out_of_range_is_refused(auth, accounts, rejected):
    account = await accounts.create()

    for days in (0, -1, 366):
        error = await rejected(
            grpc.StatusCode.INVALID_ARGUMENT, create_key(auth, account, expires_in_days=days)
        )
        assert "from 1 to 365" in error.details()


async def test_an_expired_key_is_refused_with_its_own_message(auth, accounts, database, rejected):
    account = await accounts.create()
    created = await create_key(auth, account, expires_in_days=1)
    await authenticate(auth, created.secret)
    await database.execute(
        "UPDATE auth.api_keys SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=created.key.id,
    )

    expired = await rejected(grpc.StatusCode.UNAUTHENTICATED, authenticate(auth, created.secret))

    assert expired.details() == "the API key has expired"
    assert ("error-code", "api_key_expired") in tuple(expired.trailing_metadata())
    unknown = await rejected(
        grpc.StatusCode.UNAUTHENTICATED, authenticate(auth, "ov_12345678_nope")
    )
    assert unknown.details() != expired.details()


async def test_a_revoked_key_that_also_expired_reads_as_revoked(auth, accounts, database, rejected):
    account = await accounts.create()
    created = await create_key(auth, account, expires_in_days=1)
    await auth.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(key_id=created.key.id), metadata=account.metadata
    )
    await database.execute(
        "UPDATE auth.api_keys SET expires_at = now() - interval '1 day' WHERE id = :id",
        id=created.key.id,
    )

    error = await rejected(grpc.StatusCode.UNAUTHENTICATED, authenticate(auth, created.secret))

    assert error.details() == "the API key is invalid or revoked"


# Migration


def test_keys_made_before_scopes_get_the_scopes_of_the_time_and_no_expiry(infrastructure):
    """Revision 0003 on a database holding a key from before it: the key keeps doing all it
    could then, and lasts until revoked. Scopes added later (`results:share`, ADR 0048) are
    not given to it: a key gets them only when made asking for them, or for every scope."""
    with fresh_database(infrastructure.database_url) as database_url:
        upgrade_to(
            migrations_dir=MIGRATIONS_DIR, database_url=database_url, schema=SCHEMA, revision="0002"
        )
        engine = create_engine(sync_url(database_url))
        user_id, key_id = uuid.uuid4(), uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO auth.users (id, email, name, password_hash)"
                    " VALUES (:id, :email, 'Old', 'x')"
                ),
                {"id": user_id, "email": f"old-{user_id.hex}@example.com"},
            )
            connection.execute(
                text(
                    "INSERT INTO auth.api_keys (id, user_id, name, prefix, key_hash)"
                    " VALUES (:id, :user_id, 'old', 'ov_00000000', :hash)"
                ),
                {"id": key_id, "user_id": user_id, "hash": "0" * 64},
            )

        upgrade_to_head(migrations_dir=MIGRATIONS_DIR, database_url=database_url, schema=SCHEMA)

        with engine.connect() as connection:
            scopes, expires_at = connection.execute(
                text("SELECT scopes, expires_at FROM auth.api_keys WHERE id = :id"),
                {"id": key_id},
            ).one()
        engine.dispose()
    assert scopes == ["detect", "results:read", "results:write", "webhooks"]
    assert expires_at is None


async def test_an_account_has_at_most_so_many_keys_in_use_and_a_past_one_frees_its_place(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    keys = [await create_key(auth, account, name=f"device {n}") for n in range(MAX_KEYS_IN_USE)]

    refused = await rejected(grpc.StatusCode.FAILED_PRECONDITION, create_key(auth, account))
    assert refused.details() == (
        f"this account has {MAX_KEYS_IN_USE} API keys in use, as many as one account may:"
        " revoke one it no longer needs"
    )
    await auth.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(key_id=keys[0].key.id), metadata=account.metadata
    )
    await create_key(auth, account, name="replacement")
    await database.execute(
        "UPDATE auth.api_keys SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=keys[1].key.id,
    )
    await create_key(auth, account, name="after an expiry")
    await rejected(grpc.StatusCode.FAILED_PRECONDITION, create_key(auth, account))


async def test_the_list_holds_every_key_in_use_and_the_newest_past_ones(auth, accounts):
    account = await accounts.create()
    past = []
    for n in range(MAX_PAST_KEYS_LISTED + 2):
        made = await create_key(auth, account, name=f"rotated {n}")
        await auth.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(key_id=made.key.id), metadata=account.metadata
        )
        past.append(made.key.id)
    in_use = [(await create_key(auth, account, name=f"live {n}")).key.id for n in range(2)]

    listed = await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=account.metadata)

    newest_past = past[::-1][:MAX_PAST_KEYS_LISTED]
    assert [key.id for key in listed.keys] == [*in_use[::-1], *newest_past]
