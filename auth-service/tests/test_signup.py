"""SignUp: who may register, what is stored, and the event that announces it."""

import grpc
import pytest
from google.protobuf import json_format

from objectvision.v1 import auth_pb2, notification_pb2

PASSWORD = "correct horse battery staple"


async def test_signup_returns_the_new_user_without_any_password(auth, accounts):
    email = accounts.new_email()

    user = await auth.SignUp(auth_pb2.SignUpRequest(email=email, password=PASSWORD, name="Ada"))

    assert user.id
    assert user.email == email
    assert user.name == "Ada"
    assert user.is_active and not user.is_admin
    assert user.HasField("created_at") and user.HasField("updated_at")
    assert PASSWORD not in str(user)
    assert "password" not in {field.name for field, _ in user.ListFields()}


async def test_signup_stores_an_argon2id_hash_not_the_password(auth, accounts, database):
    account = await accounts.create()

    stored = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )

    assert stored.startswith("$argon2id$")
    assert account.password not in stored


async def test_signup_normalises_the_email_to_lowercase(auth, accounts):
    local = accounts.new_email().split("@")[0]

    user = await auth.SignUp(
        auth_pb2.SignUpRequest(email=f"  {local.upper()}@Example.COM ", password=PASSWORD, name="A")
    )

    assert user.email == f"{local}@example.com"


async def test_signup_with_a_taken_email_in_any_case_is_already_exists(auth, accounts, rejected):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.ALREADY_EXISTS,
        auth.SignUp(
            auth_pb2.SignUpRequest(email=account.email.upper(), password=PASSWORD, name="Eve")
        ),
    )


@pytest.mark.parametrize(
    ("email", "password", "name", "message"),
    [
        ("not-an-email", PASSWORD, "Ada", "email"),
        ("", PASSWORD, "Ada", "email is required"),
        (None, "short", "Ada", "at least 8 characters"),
        (None, "x" * 129, "Ada", "at most 128 characters"),
        (None, PASSWORD, "", "name is required"),
        (None, PASSWORD, "   ", "name is required"),
        (None, PASSWORD, "x" * 101, "at most 100 characters"),
    ],
    ids=[
        "malformed email",
        "empty email",
        "short password",
        "long password",
        "empty name",
        "blank name",
        "long name",
    ],
)
async def test_signup_with_invalid_input_is_invalid_argument_and_writes_nothing(
    auth, accounts, database, rejected, email, password, name, message
):
    email = accounts.new_email() if email is None else email

    error = await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.SignUp(auth_pb2.SignUpRequest(email=email, password=password, name=name)),
    )

    assert message in error.details()
    assert await database.value("SELECT count(*) FROM auth.users WHERE email = :e", e=email) == 0
    assert (
        await database.value(
            "SELECT count(*) FROM auth.outbox WHERE payload->'userRegistered'->>'email' = :e",
            e=email,
        )
        == 0
    )


async def test_a_password_of_exactly_eight_and_of_exactly_128_characters_is_accepted(accounts):
    await accounts.create(password="x" * 8)
    await accounts.create(password="x" * 128)


async def test_signup_with_an_admin_email_creates_an_admin(accounts):
    admin = await accounts.admin()

    assert admin.user.is_admin


async def test_signup_writes_a_user_registered_event_in_the_same_transaction(accounts, database):
    account = await accounts.create(name="Grace Hopper")

    event_row = await database.row(
        "SELECT id, event_type, payload, published_at, xmin::text AS xmin FROM auth.outbox"
        " WHERE payload->>'userId' = :id",
        id=account.id,
    )
    user_xmin = await database.value(
        "SELECT xmin::text FROM auth.users WHERE id = :id", id=account.id
    )

    assert event_row is not None
    assert event_row.event_type == "user.registered"
    assert event_row.published_at is None
    # Rows written by one transaction carry that transaction's id in xmin.
    assert event_row.xmin == user_xmin
    event = json_format.ParseDict(event_row.payload, notification_pb2.Event())
    assert event.id == str(event_row.id)
    assert event.type == "user.registered"
    assert event.user_id == account.id
    assert event.HasField("occurred_at")
    assert event.user_registered.email == account.email
    assert event.user_registered.name == "Grace Hopper"


async def test_signup_creates_default_settings_with_the_user(auth, accounts):
    account = await accounts.create()

    settings = await auth.GetSettings(auth_pb2.GetSettingsRequest(), metadata=account.metadata)

    assert settings.user_id == account.id
    assert settings.theme == "system"
    assert settings.notifications_enabled is True
