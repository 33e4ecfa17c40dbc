"""VerifyEmail and ResendEmailVerification: an account's address counts as its owner's only
once a single-use link mailed to it was opened (ADR 0029). The link is made like a password
reset link (ADR 0021): 256 random bits, stored as a SHA-256, with an expiry, carried by an
outbox event staged in the same commit.

The token reaches the user only inside the `user.email_verification_requested` event (the
email's link), so these tests read it from the outbox, where notification-service would.
"""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import json_format

from auth_service.config import AuthSettings
from auth_service.email_verifications import service as verifications
from auth_service.opaque_tokens import LinkTerms
from objectvision.v1 import auth_pb2, notification_pb2
from objectvision_common.db import create_engine_for, session_factory
from objectvision_common.errors import InvalidArgument
from objectvision_common.sealing import event_secrets

REQUESTED = "user.email_verification_requested"
INVALID_LINK = "this email verification link is invalid, already used or expired; ask for a new one"
# `ove_` and 43 base64url characters: secrets.token_urlsafe(32), 256 random bits.
TOKEN_SHAPE = re.compile(r"ove_[A-Za-z0-9_-]{43}")


async def verification_events(database, user_id: str) -> list[notification_pb2.Event]:
    """The verification events staged for an account, oldest first."""
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id"
        " ORDER BY created_at",
        type=REQUESTED,
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def verify(auth, token: str) -> auth_pb2.VerifiedEmail:
    return await auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))


async def refused_link(auth, rejected, token: str) -> None:
    """A verification with `token` that must fail as a link that does not work."""
    error = await rejected(grpc.StatusCode.INVALID_ARGUMENT, verify(auth, token))
    assert error.details() == INVALID_LINK
    assert ("error-code", "invalid_verification_token") in tuple(error.trailing_metadata() or ())


async def stored_user(auth, account) -> auth_pb2.User:
    return await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)


async def test_sign_up_stages_a_link_for_the_new_address_and_stores_only_its_hash(
    auth, accounts, database, settings
):
    account = await accounts.create()

    [event] = await verification_events(database, account.id)
    token = database.link_token(event.email_verification_requested)
    row = await database.row(
        "SELECT email, token_hash, created_at, expires_at, used_at, revoked_at"
        " FROM auth.email_verification_tokens WHERE user_id = :id",
        id=account.id,
    )

    assert not account.user.email_verified
    assert TOKEN_SHAPE.fullmatch(token)
    assert event.email_verification_requested.email == account.email
    assert row.email == account.email
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.used_at is None and row.revoked_at is None
    assert row.expires_at - row.created_at == timedelta(
        seconds=settings.email_verification_ttl_seconds
    )
    assert settings.email_verification_ttl_seconds == 48 * 3600
    assert event.email_verification_requested.expires_at.ToDatetime(UTC) == row.expires_at
    # The token itself is stored nowhere in the schema but in the event that mails it.
    assert (
        await database.value(
            "SELECT count(*) FROM auth.email_verification_tokens WHERE token_hash = :t", t=token
        )
        == 0
    )


async def test_a_taken_address_at_sign_up_gets_no_link(auth, accounts, database):
    owner = await accounts.create()

    await auth.SignUp(
        auth_pb2.SignUpRequest(email=owner.email, password="someone else's", name="Eve")
    )

    assert len(await verification_events(database, owner.id)) == 1


async def test_the_link_verifies_the_address_once(auth, accounts, rejected):
    account = await accounts.create()
    token = await accounts.verification_token(account.id)

    verified = await verify(auth, token)

    assert verified.email == account.email
    assert (await stored_user(auth, account)).email_verified
    await refused_link(auth, rejected, token)


async def test_an_expired_link_is_refused_and_verifies_nothing(auth, accounts, database, rejected):
    account = await accounts.create()
    token = await accounts.verification_token(account.id)
    await database.execute(
        "UPDATE auth.email_verification_tokens SET expires_at = now() - interval '1 second'"
        " WHERE user_id = :id",
        id=account.id,
    )

    await refused_link(auth, rejected, token)

    assert not (await stored_user(auth, account)).email_verified


@pytest.mark.parametrize("token", ["", "ove_unknown", "x" * 300, "ovp_" + "a" * 43])
async def test_unknown_and_malformed_tokens_are_refused_alike(auth, rejected, token):
    await refused_link(auth, rejected, token)


async def test_a_link_of_an_account_disabled_since_is_refused(auth, accounts, database, rejected):
    account = await accounts.create()
    token = await accounts.verification_token(account.id)
    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=account.id)

    await refused_link(auth, rejected, token)


async def test_asking_again_mails_a_new_link_and_ends_the_old_one(auth, accounts, rejected):
    account = await accounts.create()
    old = await accounts.verification_token(account.id)

    await auth.ResendEmailVerification(
        auth_pb2.ResendEmailVerificationRequest(), metadata=account.metadata
    )
    new = await accounts.verification_token(account.id)

    assert new != old
    await refused_link(auth, rejected, old)
    assert (await verify(auth, new)).email == account.email


async def test_a_verified_address_is_not_sent_another_link(auth, accounts, database, rejected):
    account = await accounts.create()
    await accounts.verify(account)

    error = await rejected(
        grpc.StatusCode.FAILED_PRECONDITION,
        auth.ResendEmailVerification(
            auth_pb2.ResendEmailVerificationRequest(), metadata=account.metadata
        ),
    )

    assert ("error-code", "email_already_verified") in tuple(error.trailing_metadata() or ())
    assert len(await verification_events(database, account.id)) == 1


async def test_an_api_key_cannot_ask_for_a_link(auth, accounts, principal, rejected):
    account = await accounts.create()

    error = await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.ResendEmailVerification(
            auth_pb2.ResendEmailVerificationRequest(),
            metadata=principal(account.id, auth_method="api_key"),
        ),
    )

    assert ("error-code", "session_required") in tuple(error.trailing_metadata() or ())


async def ask_to_move(auth, account, new_email: str) -> auth_pb2.User:
    return await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=new_email, current_password=account.password),
        metadata=account.metadata,
    )


async def test_a_change_of_address_moves_the_account_when_the_new_addresss_link_is_opened(
    auth, accounts, database
):
    """ADR 0033: until then the account keeps its address, verified as it was."""
    account = await accounts.create()
    await accounts.verify(account)
    new_email = accounts.new_email()

    waiting = await ask_to_move(auth, account, new_email)

    assert (waiting.email, waiting.email_verified, waiting.pending_email) == (
        account.email,
        True,
        new_email,
    )
    events = await verification_events(database, account.id)
    assert [e.email_verification_requested.email for e in events] == [account.email, new_email]
    assert [e.email_verification_requested.change_of_address for e in events] == [False, True]
    moved = await verify(auth, database.link_token(events[-1].email_verification_requested))
    assert (moved.email, moved.address_changed) == (new_email, True)
    user = await stored_user(auth, account)
    assert (user.email, user.email_verified, user.pending_email) == (new_email, True, "")


async def test_opening_a_change_link_ends_the_old_addresss_links(auth, accounts, rejected):
    account = await accounts.create()
    old_address_link = await accounts.verification_token(account.id)

    await accounts.change_email(account, accounts.new_email())

    await refused_link(auth, rejected, old_address_link)


async def test_a_waiting_change_and_a_verification_of_the_current_address_do_not_end_each_other(
    auth, accounts
):
    account = await accounts.create()
    current_address_link = await accounts.verification_token(account.id)
    new_email = accounts.new_email()
    await ask_to_move(auth, account, new_email)
    change_link = await accounts.verification_token(account.id)

    assert (await verify(auth, current_address_link)).address_changed is False
    assert (await verify(auth, change_link)).email == new_email


async def test_a_newer_change_ends_the_earlier_changes_link(auth, accounts, rejected):
    account = await accounts.create()
    await ask_to_move(auth, account, accounts.new_email())
    earlier = await accounts.verification_token(account.id)
    newer_email = accounts.new_email()

    await ask_to_move(auth, account, newer_email)

    await refused_link(auth, rejected, earlier)
    assert (await stored_user(auth, account)).pending_email == newer_email


async def test_a_change_link_for_an_address_taken_since_moves_nothing(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    new_email = accounts.new_email()
    await ask_to_move(auth, account, new_email)
    link = await accounts.verification_token(account.id)
    await auth.SignUp(auth_pb2.SignUpRequest(email=new_email, password="quicker one", name="Q"))

    error = await rejected(grpc.StatusCode.FAILED_PRECONDITION, verify(auth, link))

    assert ("error-code", "email_taken") in tuple(error.trailing_metadata() or ())
    user = await stored_user(auth, account)
    assert (user.email, user.pending_email) == (account.email, new_email)
    assert await database.value(
        "SELECT used_at IS NULL FROM auth.email_verification_tokens WHERE email = :email"
        " AND user_id = :id",
        email=new_email,
        id=account.id,
    )


async def test_an_expired_change_is_no_longer_shown_and_its_link_moves_nothing(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    await ask_to_move(auth, account, accounts.new_email())
    link = await accounts.verification_token(account.id)
    await database.execute(
        "UPDATE auth.users SET pending_email_expires_at = now() - interval '1 second'"
        " WHERE id = :id",
        id=account.id,
    )
    await database.execute(
        "UPDATE auth.email_verification_tokens SET expires_at = now() - interval '1 second'"
        " WHERE user_id = :id",
        id=account.id,
    )

    await refused_link(auth, rejected, link)

    user = await stored_user(auth, account)
    assert (user.email, user.pending_email) == (account.email, "")
    assert not user.HasField("pending_email_expires_at")


async def test_keeping_the_same_address_keeps_it_verified(auth, accounts, database):
    account = await accounts.create()
    await accounts.verify(account)

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=account.email.upper(), current_password=account.password),
        metadata=account.metadata,
    )

    assert user.email_verified
    assert len(await verification_events(database, account.id)) == 1


async def test_concurrent_uses_of_one_link_verify_once(auth, accounts):
    account = await accounts.create()
    token = await accounts.verification_token(account.id)

    outcomes = await asyncio.gather(
        *(verify(auth, token) for _ in range(5)), return_exceptions=True
    )

    assert sum(isinstance(outcome, auth_pb2.VerifiedEmail) for outcome in outcomes) == 1
    assert all(
        isinstance(outcome, auth_pb2.VerifiedEmail)
        or outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
        for outcome in outcomes
    )


# The service functions themselves, with their clock and ADMIN_EMAILS set by the test.


@pytest.fixture
async def sessions(settings: AuthSettings) -> AsyncIterator:
    engine = create_engine_for(settings.database_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


async def test_a_link_works_until_its_lifetime_is_over_and_not_a_moment_longer(
    accounts, database, sessions, settings
):
    account = await accounts.create()
    asked_at = datetime.now(UTC)
    lifetime = timedelta(seconds=60)
    terms = LinkTerms(lifetime=lifetime, sealer=event_secrets(settings.service_token_secret))
    async with sessions() as session:
        await verifications.resend(
            session=session, user_id=uuid.UUID(account.id), terms=terms, now=asked_at
        )
    token = await accounts.verification_token(account.id)

    with pytest.raises(InvalidArgument) as expired:
        async with sessions() as session:
            await verifications.verify_email(
                session=session, token=token, admin_emails=frozenset(), now=asked_at + lifetime
            )
    assert expired.value.code == "invalid_verification_token"
    async with sessions() as session:
        email = await verifications.verify_email(
            session=session,
            token=token,
            admin_emails=frozenset(),
            now=asked_at + lifetime - timedelta(milliseconds=1),
        )
    assert email == (account.email, False)


async def test_admin_emails_promote_an_account_when_it_verifies_the_address_not_before(
    auth, accounts, sessions
):
    account = await accounts.create()
    admin_emails = frozenset({account.email})
    # Signed up with the address (as sign-up always is, whatever ADMIN_EMAILS says): no admin.
    assert not account.user.is_admin
    token = await accounts.verification_token(account.id)

    async with sessions() as session:
        await verifications.verify_email(session=session, token=token, admin_emails=admin_emails)

    user = await stored_user(auth, account)
    assert user.is_admin and user.email_verified


async def test_admin_emails_do_not_promote_another_address_verified(accounts, auth, sessions):
    account = await accounts.create()
    token = await accounts.verification_token(account.id)

    async with sessions() as session:
        await verifications.verify_email(
            session=session, token=token, admin_emails=frozenset({accounts.new_email()})
        )

    user = await stored_user(auth, account)
    assert user.email_verified and not user.is_admin
