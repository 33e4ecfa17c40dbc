"""GetUser and UpdateUser: object-level authorization and the rules for credentials."""

import uuid

import grpc
import pytest

from objectvision.v1 import auth_pb2


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


async def test_changing_the_email_with_the_current_password_moves_the_login(
    auth, accounts, rejected
):
    account = await accounts.create()
    new_email = accounts.new_email()

    user = await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(email=new_email.upper(), current_password=account.password),
        metadata=account.metadata,
    )

    assert user.email == new_email
    await auth.Login(auth_pb2.LoginRequest(email=new_email, password=account.password))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password)),
    )


async def test_changing_the_email_to_a_taken_one_is_already_exists(auth, accounts, rejected):
    alice = await accounts.create()
    bob = await accounts.create()

    await rejected(
        grpc.StatusCode.ALREADY_EXISTS,
        auth.UpdateUser(
            auth_pb2.UpdateUserRequest(email=bob.email, current_password=alice.password),
            metadata=alice.metadata,
        ),
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

    assert user.email == new_email


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
