"""Security notices: a changed password (`user.password_changed`) or sign-in address
(`user.email_changed`) is announced to the account's owner by an event staged in the change's
own commit. A change that is refused, or changes nothing, stages none.

notification-service turns the events into emails; these tests read them from the outbox,
where its relay would.
"""

import uuid
from datetime import UTC

import grpc
import pytest
from google.protobuf import json_format

from objectvision.v1 import auth_pb2, notification_pb2

PASSWORD_CHANGED = "user.password_changed"
EMAIL_CHANGED = "user.email_changed"
NOTICES = (PASSWORD_CHANGED, EMAIL_CHANGED)
NEW_PASSWORD = "a brand new passphrase"


async def notices(database, user_id: str, event_type: str) -> list[notification_pb2.Event]:
    """The events of `event_type` staged for the account, oldest first."""
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id"
        " ORDER BY created_at",
        type=event_type,
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def no_notices(database, user_id: str) -> bool:
    return all([await notices(database, user_id, kind) == [] for kind in NOTICES])


async def changed_at(database, user_id: str):
    return await database.value("SELECT updated_at FROM auth.users WHERE id = :id", id=user_id)


async def emailed_reset_token(auth, database, account) -> str:
    """Ask for a reset link and take its token from the outbox, as the email would carry it."""
    await auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=account.email))
    [event] = await notices(database, account.id, "user.password_reset_requested")
    return database.link_token(event.password_reset_requested)


async def test_a_password_changed_in_the_settings_is_announced_once_with_its_commit(
    auth, accounts, database
):
    account = await accounts.create()

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(password=NEW_PASSWORD, current_password=account.password),
        metadata=account.metadata,
    )

    [event] = await notices(database, account.id, PASSWORD_CHANGED)
    assert (event.type, event.user_id) == (PASSWORD_CHANGED, account.id)
    assert event.password_changed.method == "settings"
    assert event.occurred_at.ToDatetime(UTC) == await changed_at(database, account.id)
    # Nothing about the password, and no address: the notice goes to the account's.
    payload = json_format.MessageToJson(event)
    for secret in (NEW_PASSWORD, account.password, account.email):
        assert secret not in payload
    assert await notices(database, account.id, EMAIL_CHANGED) == []


async def test_a_refused_password_change_announces_nothing(auth, accounts, database, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password=NEW_PASSWORD, current_password="wrong guess!"),
            metadata=account.metadata,
        ),
    )
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password=NEW_PASSWORD), metadata=account.metadata
        ),
    )
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(password="short", current_password=account.password),
            metadata=account.metadata,
        ),
    )

    assert await no_notices(database, account.id)
    await accounts.login(account)


async def test_a_name_change_announces_nothing(auth, accounts, database):
    account = await accounts.create()

    await auth.UpdateUser(auth_pb2.UpdateUserRequest(name="Ada Renamed"), metadata=account.metadata)

    assert await no_notices(database, account.id)


async def test_a_password_an_administrator_sets_is_announced_to_the_account_as_theirs(
    auth, accounts, database
):
    admin = await accounts.admin()
    bob = await accounts.create(name="Bob")

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(
            user_id=bob.id, password=NEW_PASSWORD, current_password=admin.password
        ),
        metadata=admin.metadata,
    )

    [event] = await notices(database, bob.id, PASSWORD_CHANGED)
    assert event.password_changed.method == "administrator"
    await auth.Login(auth_pb2.LoginRequest(email=bob.email, password=NEW_PASSWORD))


async def test_a_reset_with_an_emailed_link_is_announced_once_and_a_refused_one_not_at_all(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    token = await emailed_reset_token(auth, database, account)
    # Asking for a link changes nothing yet.
    assert await notices(database, account.id, PASSWORD_CHANGED) == []
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password="short")),
    )
    assert await notices(database, account.id, PASSWORD_CHANGED) == []

    await auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD)),
    )

    [event] = await notices(database, account.id, PASSWORD_CHANGED)
    assert event.password_changed.method == "reset_link"
    assert event.occurred_at.ToDatetime(UTC) == await changed_at(database, account.id)
    assert token not in json_format.MessageToJson(event)


async def test_an_email_change_is_announced_to_the_old_address_with_a_hint_of_the_new(
    auth, accounts, database
):
    """Staged when the link mailed to the new address is opened, in the commit that moves
    the account there (ADR 0033); asking for the change alone announces nothing."""
    account = await accounts.create()
    new_email = accounts.new_email()

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=new_email, current_password=account.password),
        metadata=account.metadata,
    )
    assert await notices(database, account.id, EMAIL_CHANGED) == []
    await auth.VerifyEmail(
        auth_pb2.VerifyEmailRequest(token=await accounts.verification_token(account.id))
    )

    [event] = await notices(database, account.id, EMAIL_CHANGED)
    assert (event.type, event.user_id) == (EMAIL_CHANGED, account.id)
    assert event.email_changed.old_email == account.email
    assert event.email_changed.new_email_hint == f"{new_email[0]}***@example.com"
    assert new_email not in json_format.MessageToJson(event)
    assert event.occurred_at.ToDatetime(UTC) == await changed_at(database, account.id)
    assert await notices(database, account.id, PASSWORD_CHANGED) == []


@pytest.mark.parametrize("local", ["a", "grace.hopper"])
async def test_the_hint_keeps_the_first_character_and_the_domain(auth, accounts, database, local):
    """The fixed `***` says nothing of the local part's length, even for one character."""
    account = await accounts.create()
    domain = f"{uuid.uuid4().hex[:12]}.example.com"
    await accounts.change_email(account, f"{local}@{domain}")

    [event] = await notices(database, account.id, EMAIL_CHANGED)
    assert event.email_changed.new_email_hint == f"{local[0]}***@{domain}"


async def test_email_changes_refused_or_changing_nothing_announce_nothing(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    owner = await accounts.create()

    await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(
                email=accounts.new_email(), current_password="not my password"
            ),
            metadata=account.metadata,
        ),
    )
    # The account's own address again, in other letters: no change.
    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=account.email.upper(), current_password=account.password),
        metadata=account.metadata,
    )
    # Another account's address: it waits with no link (its owner gets the "attempted"
    # notice), so nothing moves.
    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=owner.email, current_password=account.password),
        metadata=account.metadata,
    )
    # A free address asked for and never confirmed: nothing moves either.
    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=accounts.new_email(), current_password=account.password),
        metadata=account.metadata,
    )

    assert await no_notices(database, account.id)
    assert await no_notices(database, owner.id)


async def test_a_password_and_address_changed_together_are_each_announced_when_made(
    auth, accounts, database
):
    """The password changes with the request and is announced in its commit; the address
    moves, and is announced, when the link mailed to it is opened."""
    account = await accounts.create()
    new_email = accounts.new_email()

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(
            email=new_email, password=NEW_PASSWORD, current_password=account.password
        ),
        metadata=account.metadata,
    )
    [changed] = await notices(database, account.id, PASSWORD_CHANGED)
    assert await notices(database, account.id, EMAIL_CHANGED) == []
    await auth.VerifyEmail(
        auth_pb2.VerifyEmailRequest(token=await accounts.verification_token(account.id))
    )

    [moved] = await notices(database, account.id, EMAIL_CHANGED)
    assert moved.email_changed.old_email == account.email
    assert changed.password_changed.method == "settings"
    assert moved.occurred_at.ToDatetime(UTC) > changed.occurred_at.ToDatetime(UTC)
