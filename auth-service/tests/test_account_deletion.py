"""Deleting an account (ADR 0025): the owner's current password again, then in one commit every
session and API key stops working, the row and everything hanging off it goes (the address is
free for a new sign-up), and one `user.deleted` event is staged for the other services to
erase the user's data. A refused deletion changes nothing and stages nothing.

Against the real service, PostgreSQL and Redis (conftest.py); the events are read from the
outbox, where the relay would take them.
"""

import asyncio

import grpc
import jwt
from google.protobuf import json_format

from objectvision.v1 import auth_pb2, notification_pb2
from objectvision_common.revocation import revoked_session_key

USER_DELETED = "user.deleted"
# Every table of the auth schema that keeps something of an account.
ACCOUNT_TABLES = {
    "users": "id",
    "refresh_tokens": "user_id",
    "api_keys": "user_id",
    "user_settings": "user_id",
    "password_reset_tokens": "user_id",
}


async def deleted_events(database, user_id: str) -> list[notification_pb2.Event]:
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id",
        type=USER_DELETED,
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def stored_rows(database, user_id: str) -> dict[str, int]:
    """How many rows of each auth table belong to the account."""
    return {
        table: await database.value(
            f"SELECT count(*) FROM auth.{table} WHERE {column} = :id",  # noqa: S608 - fixed names
            id=user_id,
        )
        for table, column in ACCOUNT_TABLES.items()
    }


async def delete(auth, account, password: str, *, metadata=None) -> None:
    await auth.DeleteAccount(
        auth_pb2.DeleteAccountRequest(current_password=password),
        metadata=metadata or account.metadata,
    )


async def test_a_wrong_or_missing_password_deletes_nothing_and_stages_nothing(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    session = await accounts.login(account)
    before = await stored_rows(database, account.id)

    refused = await rejected(
        grpc.StatusCode.PERMISSION_DENIED, delete(auth, account, "not my password")
    )
    assert refused.details() == "current_password is incorrect"
    # The same answer a password change gives to a wrong current password.
    same = await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password="another passphrase", current_password="nope"),
            metadata=account.metadata,
        ),
    )
    assert same.details() == refused.details()
    missing = await rejected(grpc.StatusCode.INVALID_ARGUMENT, delete(auth, account, ""))
    assert "current_password is required" in missing.details()

    assert await stored_rows(database, account.id) == before
    assert await deleted_events(database, account.id) == []
    assert (await accounts.login(account)).access_token
    verified = await auth.VerifyToken(
        auth_pb2.VerifyTokenRequest(access_token=session.access_token)
    )
    assert verified.user_id == account.id


async def test_after_deletion_no_login_refresh_access_token_or_api_key_works(
    auth, accounts, database, redis, rejected
):
    account = await accounts.create()
    first = await accounts.login(account)
    second = await accounts.login(account)
    key = await auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="ci"), metadata=account.metadata
    )
    await auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=account.email))
    assert all(count > 0 for count in (await stored_rows(database, account.id)).values())

    await delete(auth, account, account.password)

    await rejected(grpc.StatusCode.UNAUTHENTICATED, accounts.login(account))
    for pair in (first, second):
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        )
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token)),
        )
        # What the gateway checks without asking this service: the session's revocation entry.
        sid = jwt.decode(pair.access_token, options={"verify_signature": False})["sid"]
        assert await redis.exists(revoked_session_key(sid)) == 1
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=key.secret)),
    )
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata),
    )
    assert await stored_rows(database, account.id) == dict.fromkeys(ACCOUNT_TABLES, 0)


async def test_an_api_key_caller_cannot_delete_the_account_even_with_the_password(
    auth, accounts, database, principal, rejected
):
    """Deleting the account is for a signed-in session only (ADR 0026)."""
    account = await accounts.create()
    key = await auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="cli"), metadata=account.metadata
    )
    as_key = principal(account.id, auth_method="api_key")

    error = await rejected(
        grpc.StatusCode.PERMISSION_DENIED, delete(auth, account, account.password, metadata=as_key)
    )
    assert "signed-in session" in (error.details() or "")

    assert await auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=key.secret))
    assert await deleted_events(database, account.id) == []


async def test_the_address_of_a_deleted_account_can_sign_up_again_as_a_new_account(
    auth, accounts, database, rejected
):
    account = await accounts.create(name="Ada Lovelace")
    await delete(auth, account, account.password)

    await auth.SignUp(
        auth_pb2.SignUpRequest(
            email=account.email, password="a different passphrase", name="Ada Again"
        )
    )

    again = await accounts.stored(account.email)
    assert again.id != account.id
    assert again.name == "Ada Again"
    tokens = await auth.Login(
        auth_pb2.LoginRequest(email=account.email, password="a different passphrase")
    )
    verified = await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=tokens.access_token))
    assert verified.user_id == again.id
    # A new account: none of the old one's sessions or data, and it is welcomed as new.
    await rejected(grpc.StatusCode.UNAUTHENTICATED, accounts.login(account))
    registered = await database.value(
        "SELECT count(*) FROM auth.outbox WHERE event_type = 'user.registered'"
        " AND payload->>'userId' = :id",
        id=again.id,
    )
    assert registered == 1


async def test_the_deletion_stages_one_user_deleted_event_with_the_address_and_nothing_more(
    auth, accounts, database, rejected
):
    account = await accounts.create(name="Grace Hopper")

    await delete(auth, account, account.password)
    await rejected(grpc.StatusCode.UNAUTHENTICATED, delete(auth, account, account.password))

    [event] = await deleted_events(database, account.id)
    assert (event.type, event.user_id) == (USER_DELETED, account.id)
    assert event.user_deleted.email == account.email
    assert event.HasField("occurred_at")
    payload = json_format.MessageToJson(event)
    for kept_out in (account.password, "Grace Hopper"):
        assert kept_out not in payload


async def test_two_deletions_at_once_delete_once_and_stage_one_event(auth, accounts, database):
    account = await accounts.create()

    outcomes = await asyncio.gather(
        delete(auth, account, account.password),
        delete(auth, account, account.password),
        return_exceptions=True,
    )

    refused = [outcome for outcome in outcomes if outcome is not None]
    assert len(refused) == 1
    assert isinstance(refused[0], grpc.aio.AioRpcError)
    assert refused[0].code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(await deleted_events(database, account.id)) == 1
    assert await stored_rows(database, account.id) == dict.fromkeys(ACCOUNT_TABLES, 0)


async def test_deleting_one_account_leaves_every_other_account_as_it_was(auth, accounts, database):
    leaving, staying = await accounts.create(), await accounts.create()
    staying_session = await accounts.login(staying)
    before = await stored_rows(database, staying.id)

    await delete(auth, leaving, leaving.password)

    assert await stored_rows(database, staying.id) == before
    verified = await auth.VerifyToken(
        auth_pb2.VerifyTokenRequest(access_token=staying_session.access_token)
    )
    assert verified.user_id == staying.id
    assert await deleted_events(database, staying.id) == []
