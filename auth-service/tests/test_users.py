"""GetUser and UpdateUser: object-level authorization and the rules for credentials."""

import uuid

import grpc
import pytest
from google.protobuf import json_format

from objectvision.v1 import auth_pb2, notification_pb2

EMAIL_CHANGE_ATTEMPTED = "user.email_change_attempted"


async def test_get_user_without_an_id_returns_the_caller(auth, accounts):
    account = await accounts.create(name="Ada")

    user = await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)

    assert user.id == account.id
    assert user.email == account.email
    assert user.name == "Ada"


async def test_get_user_of_another_user_is_not_found(auth, accounts, rejected):
    alice = await accounts.create()
    bob = await accounts.create()

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.GetUser(auth_pb2.GetUserRequest(user_id=bob.id), metadata=alice.metadata),
    )


async def test_get_user_of_another_user_is_not_found_even_if_the_principal_claims_admin(
    auth, accounts, principal, rejected
):
    """Admin rights come from the account, not from what a token said when it was issued."""
    alice = await accounts.create()
    bob = await accounts.create()

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.GetUser(
            auth_pb2.GetUserRequest(user_id=bob.id),
            metadata=principal(alice.id, is_admin=True),
        ),
    )


async def test_an_admin_can_read_other_users(auth, accounts):
    admin = await accounts.admin()
    bob = await accounts.create()

    user = await auth.GetUser(auth_pb2.GetUserRequest(user_id=bob.id), metadata=admin.metadata)

    assert user.email == bob.email


async def test_an_admin_asking_for_a_missing_user_gets_not_found(auth, accounts, rejected):
    admin = await accounts.admin()

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.GetUser(auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=admin.metadata),
    )


async def test_a_user_id_that_is_not_a_uuid_is_invalid_argument(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.GetUser(auth_pb2.GetUserRequest(user_id="42"), metadata=account.metadata),
    )


async def test_update_user_changes_the_name_without_a_password(auth, accounts):
    account = await accounts.create(name="Ada")

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(name="  Ada King  "), metadata=account.metadata
    )

    assert user.name == "Ada King"
    assert user.updated_at.ToDatetime() >= account.user.updated_at.ToDatetime()
    reread = await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)
    assert reread.name == "Ada King"


async def test_update_user_with_an_empty_name_is_invalid_argument(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(auth_pb2.UpdateUserRequest(name=""), metadata=account.metadata),
    )


@pytest.mark.parametrize(
    "name", ["Eve\nBcc: x@example.com", "Eve\x00", "Eve\u2028Bcc: x", "Eve\u2029X"]
)
async def test_a_name_that_could_break_a_header_line_is_invalid_argument(
    auth, accounts, rejected, name
):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(auth_pb2.UpdateUserRequest(name=name), metadata=account.metadata),
    )
    reread = await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)
    assert reread.name == account.user.name


async def test_changing_the_email_needs_the_current_password(auth, accounts, rejected):
    account = await accounts.create()
    new_email = accounts.new_email()

    missing = await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(auth_pb2.UpdateUserRequest(email=new_email), metadata=account.metadata),
    )
    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(email=new_email, current_password="not my password"),
            metadata=account.metadata,
        ),
    )

    assert "current_password" in missing.details()
    user = await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)
    assert user.email == account.email


async def test_a_new_email_waits_for_the_link_mailed_to_it_before_the_login_moves(
    auth, accounts, rejected
):
    """ADR 0033: the request alone changes nothing one can sign in with."""
    account = await accounts.create()
    new_email = accounts.new_email()

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=new_email.upper(), current_password=account.password),
        metadata=account.metadata,
    )

    assert (user.email, user.pending_email) == (account.email, new_email)
    assert user.HasField("pending_email_expires_at")
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=new_email, password=account.password)),
    )

    moved = await auth.VerifyEmail(
        auth_pb2.VerifyEmailRequest(token=await accounts.verification_token(account.id))
    )

    assert (moved.email, moved.address_changed) == (new_email, True)
    user = await auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)
    assert (user.email, user.email_verified, user.pending_email) == (new_email, True, "")
    assert not user.HasField("pending_email_expires_at")
    await auth.Login(auth_pb2.LoginRequest(email=new_email, password=account.password))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password)),
    )


async def _email_change_notices(database, user_id: str) -> int:
    return await database.value(
        "SELECT count(*) FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id",
        type=EMAIL_CHANGE_ATTEMPTED,
        id=user_id,
    )


async def test_changing_the_email_to_a_taken_one_changes_nothing_and_tells_its_owner(
    auth, accounts, database, rejected
):
    """Once ALREADY_EXISTS (409 at the gateway). Now the request is accepted like any other:
    the address waits on the account as a free one would (ADR 0033), but no link is mailed
    to it, the rest of the change applies, and the address's owner gets a notice naming only
    their own account."""
    alice = await accounts.create(name="Alice")
    bob = await accounts.create(name="Bob", password="bob's own password")
    bob_before = await database.row("SELECT * FROM auth.users WHERE id = :id", id=bob.id)

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(
            name="Alice Renamed", email=bob.email.upper(), current_password=alice.password
        ),
        metadata=alice.metadata,
    )

    assert (user.id, user.email, user.name) == (alice.id, alice.email, "Alice Renamed")
    assert user.pending_email == bob.email
    assert user == await auth.GetUser(auth_pb2.GetUserRequest(), metadata=alice.metadata)
    assert (
        await database.value(
            "SELECT count(*) FROM auth.email_verification_tokens WHERE email = :email",
            email=bob.email,
        )
        == 1  # bob's own, from his sign-up
    )
    assert await database.row("SELECT * FROM auth.users WHERE id = :id", id=bob.id) == bob_before
    await auth.Login(auth_pb2.LoginRequest(email=alice.email, password=alice.password))
    await auth.Login(auth_pb2.LoginRequest(email=bob.email, password=bob.password))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=bob.email, password=alice.password)),
    )
    event_row = await database.row(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id",
        type=EMAIL_CHANGE_ATTEMPTED,
        id=bob.id,
    )
    event = json_format.ParseDict(event_row.payload, notification_pb2.Event())
    assert (event.type, event.user_id) == (EMAIL_CHANGE_ATTEMPTED, bob.id)
    assert event.HasField("occurred_at")
    assert event.WhichOneof("payload") is None


async def test_repeated_attempts_on_a_taken_email_tell_its_owner_once_an_hour(
    auth, accounts, database, redis
):
    """Email changes and sign-ups share the owner's notice cap."""
    owner = await accounts.create()
    callers = [await accounts.create() for _ in range(2)]

    for caller in [*callers, *callers]:
        await auth.UpdateUser(
            auth_pb2.UpdateUserRequest(email=owner.email, current_password=caller.password),
            metadata=caller.metadata,
        )
    await auth.SignUp(
        auth_pb2.SignUpRequest(email=owner.email, password="eve's password", name="Eve")
    )

    assert await _email_change_notices(database, owner.id) == 1
    assert (
        await database.value(
            "SELECT count(*) FROM auth.outbox WHERE payload->>'userId' = :id "
            "AND event_type = 'user.signup_attempted'",
            id=owner.id,
        )
        == 0
    )
    assert 3500 < await redis.ttl(f"auth:signup-notice:{owner.id}") <= 3600


async def test_keeping_ones_own_email_is_no_attempt_on_it(auth, accounts, database):
    account = await accounts.create()

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=account.email.upper(), current_password=account.password),
        metadata=account.metadata,
    )

    assert user.email == account.email
    assert await _email_change_notices(database, account.id) == 0


async def test_asking_for_ones_own_email_withdraws_a_waiting_change(auth, accounts, rejected):
    account = await accounts.create()
    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=accounts.new_email(), current_password=account.password),
        metadata=account.metadata,
    )
    link = await accounts.verification_token(account.id)

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=account.email, current_password=account.password),
        metadata=account.metadata,
    )

    assert (user.email, user.pending_email) == (account.email, "")
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT, auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=link))
    )


async def test_changing_the_email_to_an_invalid_one_is_invalid_argument(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(email="nope", current_password=account.password),
            metadata=account.metadata,
        ),
    )


async def test_changing_the_password_needs_the_current_password(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password="a brand new password"), metadata=account.metadata
        ),
    )
    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(
                password="a brand new password", current_password="wrong guess!"
            ),
            metadata=account.metadata,
        ),
    )

    await accounts.login(account)


async def test_a_new_password_must_meet_the_length_rules(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password="short", current_password=account.password),
            metadata=account.metadata,
        ),
    )


async def test_changing_the_password_replaces_it_and_ends_other_sessions(auth, accounts, rejected):
    account = await accounts.create()
    other_session = await accounts.login(account)
    new_password = "a brand new password"

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(password=new_password, current_password=account.password),
        metadata=account.metadata,
    )

    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=new_password))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password)),
    )
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=other_session.refresh_token)),
    )


async def test_update_user_of_another_user_is_not_found_and_changes_nothing(
    auth, accounts, rejected
):
    alice = await accounts.create()
    bob = await accounts.create(name="Bob")

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(user_id=bob.id, name="Mallory"), metadata=alice.metadata
        ),
    )

    assert (await auth.GetUser(auth_pb2.GetUserRequest(), metadata=bob.metadata)).name == "Bob"


async def test_an_admin_can_rename_another_user(auth, accounts):
    admin = await accounts.admin()
    bob = await accounts.create(name="Bob")

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=bob.id, name="Robert"), metadata=admin.metadata
    )

    assert user.name == "Robert"


async def test_an_admin_changing_a_users_email_confirms_with_the_admins_own_password(
    auth, accounts, rejected
):
    admin = await accounts.admin()
    bob = await accounts.create()
    new_email = accounts.new_email()

    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(
                user_id=bob.id, email=new_email, current_password=bob.password + "x"
            ),
            metadata=admin.metadata,
        ),
    )
    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(
            user_id=bob.id, email=new_email, current_password=admin.password
        ),
        metadata=admin.metadata,
    )

    # As for the owner's own request, the account moves once the new address's link is opened.
    assert (user.email, user.pending_email) == (bob.email, new_email)
    await auth.VerifyEmail(
        auth_pb2.VerifyEmailRequest(token=await accounts.verification_token(bob.id))
    )
    moved = await auth.GetUser(auth_pb2.GetUserRequest(user_id=bob.id), metadata=admin.metadata)
    assert moved.email == new_email


async def test_changing_the_email_to_an_admin_email_does_not_make_an_admin(
    auth, accounts, settings
):
    account = await accounts.create()
    unclaimed_admin_email = "someone-else@example.com"
    assert unclaimed_admin_email in settings.admin_emails

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=unclaimed_admin_email, current_password=account.password),
        metadata=account.metadata,
    )

    assert user.is_admin is False
    # Give the address back so that reruns against the same database start clean.
    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=account.email, current_password=account.password),
        metadata=account.metadata,
    )
