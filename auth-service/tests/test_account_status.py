"""Admins suspend and restore accounts, grant and withdraw admin rights (ADR 0032), against
the real service, PostgreSQL and Redis.

Suspending or demoting ends every session of the account at once: its access tokens are
refused, its refresh tokens too; a suspended account cannot log in and its API keys stop.
Restoring or promoting ends nothing; the next login says so. Only an admin, from a signed-in
session, may do it, and never to their own account.
"""

import base64
import json
import uuid

import grpc

from objectvision.v1 import auth_pb2, common_pb2


def _status(user_id: str, **change: bool) -> auth_pb2.SetAccountStatusRequest:
    return auth_pb2.SetAccountStatusRequest(user_id=user_id, **change)


def _verify(auth, access_token: str):
    return auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=access_token))


def _admin_claim(access_token: str) -> bool:
    body = access_token.split(".")[1]
    return bool(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["admin"])


async def test_a_suspended_account_loses_its_sessions_and_keys_until_it_is_restored(
    auth, accounts, database, rejected
):
    admin = await accounts.admin()
    account = await accounts.create()
    tokens = await accounts.login(account)
    key = await auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="script"), metadata=account.metadata
    )

    suspended = await auth.SetAccountStatus(
        _status(account.id, active=False), metadata=admin.metadata
    )

    assert not suspended.is_active and not suspended.is_admin
    await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, tokens.access_token))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=tokens.refresh_token)),
    )
    await rejected(grpc.StatusCode.UNAUTHENTICATED, accounts.login(account))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(api_key=key.secret)),
    )

    restored = await auth.SetAccountStatus(
        _status(account.id, active=True), metadata=admin.metadata
    )
    # Restoring an active account changes nothing and tells nobody again.
    await auth.SetAccountStatus(_status(account.id, active=True), metadata=admin.metadata)

    assert restored.is_active
    # Each change is staged for the owner's email, with the address and name it goes to.
    staged = await database.rows(
        "SELECT event_type, payload FROM auth.outbox WHERE payload->>'userId' = :id"
        " AND event_type IN ('user.suspended', 'user.restored')"
        " ORDER BY created_at",
        id=account.id,
    )
    assert [row.event_type for row in staged] == ["user.suspended", "user.restored"]
    for row in staged:
        assert row.payload["accountStatusChanged"] == {
            "email": account.email,
            "name": account.user.name,
        }
    fresh = await accounts.login(account)
    assert (await _verify(auth, fresh.access_token)).user_id == account.id
    # The key was never revoked: it works again with the account.
    principal = await auth.AuthenticateApiKey(
        auth_pb2.AuthenticateApiKeyRequest(api_key=key.secret)
    )
    assert principal.user_id == account.id


async def test_a_promotion_shows_from_the_next_login_and_a_demotion_ends_the_admin_sessions(
    auth, accounts, rejected
):
    admin = await accounts.admin()
    account = await accounts.create()
    before = await accounts.login(account)

    promoted = await auth.SetAccountStatus(_status(account.id, admin=True), metadata=admin.metadata)

    assert promoted.is_admin and promoted.is_active
    # Promoting ends nothing: the older token still works and still says what it said.
    assert (await _verify(auth, before.access_token)).user_id == account.id
    assert _admin_claim(before.access_token) is False
    as_admin = await accounts.login(account)
    assert _admin_claim(as_admin.access_token) is True

    demoted = await auth.SetAccountStatus(_status(account.id, admin=False), metadata=admin.metadata)

    assert not demoted.is_admin
    await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, as_admin.access_token))
    after = await accounts.login(account)
    assert _admin_claim(after.access_token) is False


async def test_only_an_admin_from_a_session_may_and_never_to_their_own_account(
    auth, accounts, principal, rejected
):
    admin = await accounts.admin()
    account = await accounts.create()
    other = await accounts.create()

    refused = await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.SetAccountStatus(_status(other.id, active=False), metadata=account.metadata),
    )
    assert "only an admin" in (refused.details() or "")
    with_key = principal(admin.id, is_admin=True, auth_method="api_key")
    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.SetAccountStatus(_status(other.id, active=False), metadata=with_key),
    )
    for change in ({"active": False}, {"admin": False}):
        own = await rejected(
            grpc.StatusCode.FAILED_PRECONDITION,
            auth.SetAccountStatus(_status(admin.id, **change), metadata=admin.metadata),
        )
        assert dict(own.trailing_metadata() or ())["error-code"] == "own_account"
    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.SetAccountStatus(_status(str(uuid.uuid4()), active=False), metadata=admin.metadata),
    )
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.SetAccountStatus(_status(other.id), metadata=admin.metadata),
    )

    # Nothing changed for either account.
    for unchanged in (account, other):
        user = await auth.GetUser(
            auth_pb2.GetUserRequest(user_id=unchanged.id), metadata=unchanged.metadata
        )
        assert user.is_active and not user.is_admin
    assert (await accounts.login(other)).access_token


async def test_an_admin_finds_accounts_by_email_or_id_newest_first(auth, accounts, rejected):
    admin = await accounts.admin()
    first, second = await accounts.create(), await accounts.create()
    marker = uuid.uuid4().hex[:10]
    for account, name in ((first, "first"), (second, "second")):
        await accounts.change_email(account, f"{name}-{marker}@Example.com")

    def listing(query: str, **page: int):
        return auth.ListUsers(
            auth_pb2.ListUsersRequest(query=query, page=common_pb2.Page(**page)),
            metadata=admin.metadata,
        )

    found = await listing(marker.upper())
    assert found.total == 2
    assert [user.id for user in found.users] == [second.id, first.id]
    one_page = await listing(marker, limit=1, offset=1)
    assert (one_page.total, [user.id for user in one_page.users]) == (2, [first.id])
    by_id = await listing(first.id)
    assert [user.email for user in by_id.users] == [f"first-{marker}@example.com"]
    # LIKE's wildcards are plain characters here.
    assert (await listing("%")).total == 0
    assert (await listing(f"first_{marker}")).total == 0

    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.ListUsers(auth_pb2.ListUsersRequest(query=marker), metadata=first.metadata),
    )
