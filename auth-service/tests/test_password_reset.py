"""RequestPasswordReset and ResetPassword: a single-use link for a forgotten password, stored
as a hash, answered alike for addresses with and without an account (ADR 0021).

The token reaches the user only inside the `user.password_reset_requested` event (the
email's link), so these tests read it from the outbox, where notification-service would.
"""

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import empty_pb2, json_format
from redis.asyncio import Redis

from auth_service.config import AuthSettings
from auth_service.opaque_tokens import LinkTerms
from auth_service.password_resets import service as password_resets_service
from auth_service.passwords import PasswordHasher
from auth_service.tokens.revocation import RevokedAccessTokens
from objectvision.v1 import auth_pb2, notification_pb2
from objectvision_common.db import create_engine_for, session_factory
from objectvision_common.errors import InvalidArgument
from objectvision_common.sealing import event_secrets

PASSWORD_RESET_REQUESTED = "user.password_reset_requested"
NEW_PASSWORD = "a fresh passphrase nobody knows"
INVALID_LINK = "this password reset link is invalid, already used or expired; ask for a new one"
# `ovp_` and 43 base64url characters: secrets.token_urlsafe(32), 256 random bits.
TOKEN_SHAPE = re.compile(r"ovp_[A-Za-z0-9_-]{43}")


async def reset_events(database, user_id: str) -> list[notification_pb2.Event]:
    """The reset events staged for an account, oldest first."""
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id"
        " ORDER BY created_at",
        type=PASSWORD_RESET_REQUESTED,
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def emailed_token(database, user_id: str) -> str:
    """The token of the newest link staged for the account's email."""
    events = await reset_events(database, user_id)
    assert events, f"no {PASSWORD_RESET_REQUESTED} event for {user_id}"
    return database.link_token(events[-1].password_reset_requested)


async def request_link(auth, database, email: str, user_id: str) -> str:
    await auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
    return await emailed_token(database, user_id)


async def reset(auth, token: str, new_password: str = NEW_PASSWORD) -> empty_pb2.Empty:
    return await auth.ResetPassword(
        auth_pb2.ResetPasswordRequest(token=token, new_password=new_password)
    )


async def refused_link(auth, rejected, token: str) -> grpc.aio.AioRpcError:
    """A reset with `token` that must fail as a link that does not work."""
    error = await rejected(grpc.StatusCode.INVALID_ARGUMENT, reset(auth, token))
    assert error.details() == INVALID_LINK
    assert ("error-code", "invalid_reset_token") in tuple(error.trailing_metadata() or ())
    return error


async def count(database, sql: str, **params) -> int:
    return int(await database.value(sql, **params))


async def test_a_request_for_an_account_stores_only_the_hash_of_the_token_it_emails(
    auth, accounts, database, settings
):
    account = await accounts.create()

    answer = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=account.email)
    )

    assert answer == empty_pb2.Empty()
    [event] = await reset_events(database, account.id)
    token = database.link_token(event.password_reset_requested)
    assert TOKEN_SHAPE.fullmatch(token), token
    # The outbox holds the token only sealed: a copy of it does not reset the password.
    outbox_row = await database.value(
        "SELECT payload::text FROM auth.outbox WHERE id = :id", id=event.id
    )
    assert token not in outbox_row and event.password_reset_requested.sealed_token in outbox_row
    row = await database.row(
        "SELECT token_hash, created_at, expires_at, used_at, revoked_at,"
        " row_to_json(t)::text AS whole FROM auth.password_reset_tokens t WHERE user_id = :id",
        id=account.id,
    )
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.whole
    assert row.used_at is None and row.revoked_at is None
    assert row.expires_at - row.created_at == timedelta(seconds=settings.password_reset_ttl_seconds)
    assert event.password_reset_requested.expires_at.ToDatetime(UTC) == row.expires_at
    # The event names the account, not the address typed: the mail goes to the account's.
    assert event.user_id == account.id
    assert account.email not in json_format.MessageToJson(event)


async def test_an_address_without_an_account_gets_the_same_answer_and_nothing_is_stored(
    auth, accounts, database
):
    account = await accounts.create()
    tokens_before = await count(database, "SELECT count(*) FROM auth.password_reset_tokens")
    events_before = await count(
        database,
        "SELECT count(*) FROM auth.outbox WHERE event_type = :t",
        t=PASSWORD_RESET_REQUESTED,
    )

    unknown = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=accounts.new_email())
    )
    known = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=account.email)
    )

    assert unknown == known == empty_pb2.Empty()
    assert await count(database, "SELECT count(*) FROM auth.password_reset_tokens") == (
        tokens_before + 1
    )
    assert (
        await count(
            database,
            "SELECT count(*) FROM auth.outbox WHERE event_type = :t",
            t=PASSWORD_RESET_REQUESTED,
        )
        == events_before + 1
    )


async def test_the_account_is_found_under_any_spelling_of_its_email(auth, accounts, database):
    account = await accounts.create()
    local = account.email.split("@")[0]

    await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=f" {local.upper()}@\uff45xample.com ")
    )

    assert len(await reset_events(database, account.id)) == 1


async def test_a_disabled_account_gets_no_link(auth, accounts, database):
    account = await accounts.create()
    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=account.id)

    answer = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=account.email)
    )

    assert answer == empty_pb2.Empty()
    assert await reset_events(database, account.id) == []
    assert (
        await count(
            database,
            "SELECT count(*) FROM auth.password_reset_tokens WHERE user_id = :id",
            id=account.id,
        )
        == 0
    )


@pytest.mark.parametrize("email", ["nonsense", "", "two@@example.com"])
async def test_text_that_is_no_address_is_invalid_argument(auth, rejected, email):
    """Decided by the text alone, so it tells nothing about accounts."""
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email)),
    )


async def test_the_emailed_token_sets_the_new_password_and_works_once(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    token = await request_link(auth, database, account.email, account.id)

    assert await reset(auth, token) == empty_pb2.Empty()

    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=NEW_PASSWORD))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password)),
    )
    stored = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )
    assert stored.startswith("$argon2id$") and NEW_PASSWORD not in stored
    assert (
        await database.value(
            "SELECT used_at IS NOT NULL FROM auth.password_reset_tokens WHERE user_id = :id",
            id=account.id,
        )
        is True
    )
    # Used once: the same link again changes nothing.
    await refused_link(auth, rejected, token)
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=NEW_PASSWORD))


async def test_a_reset_ends_every_session_of_the_account_and_no_other(
    auth, accounts, database, rejected, redis
):
    """As a password change through UpdateUser does: refresh tokens revoked, and every access
    token refused at once through its session's revocation entry."""
    account = await accounts.create()
    bystander = await accounts.create()
    laptop, phone = await accounts.login(account), await accounts.login(account)
    bystanders_session = await accounts.login(bystander)
    token = await request_link(auth, database, account.email, account.id)

    await reset(auth, token)

    for pair in (laptop, phone):
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        )
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token)),
        )
    assert (
        await count(
            database,
            "SELECT count(*) FROM auth.refresh_tokens WHERE user_id = :id AND revoked_at IS NULL",
            id=account.id,
        )
        == 0
    )
    principal = await auth.VerifyToken(
        auth_pb2.VerifyTokenRequest(access_token=bystanders_session.access_token)
    )
    assert principal.user_id == bystander.id
    await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=bystanders_session.refresh_token))


async def test_a_newer_request_supersedes_the_older_link(auth, accounts, database, rejected):
    account = await accounts.create()
    older = await request_link(auth, database, account.email, account.id)
    newer = await request_link(auth, database, account.email, account.id)
    assert newer != older

    await refused_link(auth, rejected, older)
    await reset(auth, newer)

    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=NEW_PASSWORD))
    states = await database.row(
        "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked,"
        " count(*) FILTER (WHERE used_at IS NOT NULL) AS used"
        " FROM auth.password_reset_tokens WHERE user_id = :id",
        id=account.id,
    )
    assert (states.revoked, states.used) == (1, 1)


async def test_an_expired_link_is_refused_and_changes_nothing(auth, accounts, database, rejected):
    account = await accounts.create()
    token = await request_link(auth, database, account.email, account.id)
    await database.execute(
        "UPDATE auth.password_reset_tokens SET expires_at = now() - interval '1 second'"
        " WHERE user_id = :id",
        id=account.id,
    )
    before = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )

    await refused_link(auth, rejected, token)

    assert (
        await database.value("SELECT password_hash FROM auth.users WHERE id = :id", id=account.id)
        == before
    )
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))


async def test_a_link_of_an_account_disabled_since_is_refused(auth, accounts, database, rejected):
    account = await accounts.create()
    token = await request_link(auth, database, account.email, account.id)
    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=account.id)

    await refused_link(auth, rejected, token)


@pytest.mark.parametrize(
    "token", ["", "ovp_" + "A" * 43, "not a token at all", "ovp_" + "x" * 5000]
)
async def test_unknown_and_malformed_tokens_are_refused_alike(auth, rejected, token):
    await refused_link(auth, rejected, token)


@pytest.mark.parametrize(
    ("new_password", "message"),
    [("short", "at least 8 characters"), ("x" * 129, "at most 128 characters")],
)
async def test_the_sign_up_password_policy_applies_and_a_refusal_keeps_the_link_usable(
    auth, accounts, database, rejected, new_password, message
):
    account = await accounts.create()
    token = await request_link(auth, database, account.email, account.id)

    error = await rejected(grpc.StatusCode.INVALID_ARGUMENT, reset(auth, token, new_password))

    assert message in error.details()
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))
    await reset(auth, token)
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=NEW_PASSWORD))


# The domain functions themselves, on the same database and Redis, with the clock passed in.


@pytest.fixture
async def service_parts(settings: AuthSettings) -> AsyncIterator[tuple]:
    engine = create_engine_for(settings.database_url, pool_size=2)
    redis = Redis.from_url(settings.redis_url)
    revoked = RevokedAccessTokens(
        redis, access_lifetime=timedelta(minutes=settings.access_token_expire_minutes)
    )
    yield session_factory(engine), PasswordHasher.from_settings(settings), revoked
    await redis.aclose()
    await engine.dispose()


async def test_a_link_works_until_its_lifetime_is_over_and_not_a_moment_longer(
    accounts, database, service_parts, settings
):
    sessions, passwords, revoked = service_parts
    account = await accounts.create()
    asked_at = datetime.now(UTC)
    lifetime = timedelta(seconds=60)
    terms = LinkTerms(lifetime=lifetime, sealer=event_secrets(settings.service_token_secret))
    async with sessions() as session:
        await password_resets_service.request_reset(
            session=session, email=account.email, terms=terms, now=asked_at
        )
    token = await emailed_token(database, account.id)

    with pytest.raises(InvalidArgument) as expired:
        async with sessions() as session:
            await password_resets_service.reset_password(
                session=session,
                passwords=passwords,
                revoked=revoked,
                token=token,
                new_password=NEW_PASSWORD,
                now=asked_at + lifetime,
            )
    assert expired.value.code == "invalid_reset_token"
    async with sessions() as session:
        await password_resets_service.reset_password(
            session=session,
            passwords=passwords,
            revoked=revoked,
            token=token,
            new_password=NEW_PASSWORD,
            now=asked_at + lifetime - timedelta(milliseconds=1),
        )
    assert (
        await database.value(
            "SELECT used_at FROM auth.password_reset_tokens WHERE user_id = :id", id=account.id
        )
        is not None
    )


async def test_concurrent_requests_leave_exactly_one_working_link(auth, accounts, database):
    account = await accounts.create()

    await asyncio.gather(
        *(
            auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=account.email))
            for _ in range(5)
        )
    )

    live = await count(
        database,
        "SELECT count(*) FROM auth.password_reset_tokens"
        " WHERE user_id = :id AND used_at IS NULL AND revoked_at IS NULL",
        id=account.id,
    )
    assert live == 1
    assert len(await reset_events(database, account.id)) == 5
