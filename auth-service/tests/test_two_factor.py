"""Two-factor authentication (ADR 0034): an account enrols a TOTP authenticator app with its
password and the app's first code, and from then on a login takes a code too; recovery codes
stand in for the app once each; turning it off takes the password and a code, or an admin.

Codes are made here as an app makes them, with `pyotp` from the secret the enrolment answered;
a code for the step after the current one is as good as the current one (clock drift), which
lets a test use a fresh code without waiting 30 seconds.
"""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
import pyotp
import pytest
from google.protobuf import json_format

from auth_service.config import AuthSettings
from auth_service.two_factor import service as two_factor
from auth_service.two_factor.service import TwoFactorTerms
from auth_service.users.models import User
from objectvision.v1 import auth_pb2, notification_pb2
from objectvision_common.db import create_engine_for, session_factory
from objectvision_common.errors import Unauthenticated

from .conftest import started

RECOVERY_CODE_SHAPE = re.compile(r"[0-9a-f]{5}(-[0-9a-f]{5}){3}")
STEP = timedelta(seconds=30)


def error_code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("error-code")


async def enrolled(auth, account) -> tuple[pyotp.TOTP, list[str]]:
    """Turn two-factor authentication on for `account` as its owner would: a new secret with
    the password, then the app's current code; the app and the recovery codes."""
    enrollment = await auth.StartTwoFactorEnrollment(
        auth_pb2.StartTwoFactorEnrollmentRequest(current_password=account.password),
        metadata=account.metadata,
    )
    app = pyotp.TOTP(enrollment.secret)
    confirmed = await auth.ConfirmTwoFactorEnrollment(
        auth_pb2.ConfirmTwoFactorEnrollmentRequest(code=app.now()), metadata=account.metadata
    )
    return app, list(confirmed.codes)


def a_wrong_code(app: pyotp.TOTP) -> str:
    """Six digits that are none of the codes accepted now."""
    accepted = {next_code(app, steps) for steps in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)


def next_code(app: pyotp.TOTP, steps: int = 1) -> str:
    """The code the app shows `steps` steps from now: not yet used, and still accepted."""
    return app.at(datetime.now(UTC) + steps * STEP)


async def login(auth, account, code: str | None = None) -> auth_pb2.TokenPair:
    request = auth_pb2.LoginRequest(email=account.email, password=account.password)
    if code is not None:
        request.second_factor_code = code
    return await auth.Login(request)


async def notices(database, user_id: str, event_type: str) -> list[notification_pb2.Event]:
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = :type AND payload->>'userId' = :id"
        " ORDER BY created_at",
        type=event_type,
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def test_enrolling_answers_a_secret_for_an_app_and_stores_it_only_sealed(
    auth, accounts, database
):
    account = await accounts.create()

    enrollment = await auth.StartTwoFactorEnrollment(
        auth_pb2.StartTwoFactorEnrollmentRequest(current_password=account.password),
        metadata=account.metadata,
    )

    uri = urlsplit(enrollment.otpauth_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrollment.secret]
    assert parse_qs(uri.query)["issuer"] == ["ObjectVision"]
    assert unquote(uri.path) == f"/ObjectVision:{account.email}"
    stored = await database.value(
        "SELECT sealed_secret FROM auth.totp_factors WHERE user_id = :id", id=account.id
    )
    assert stored and enrollment.secret not in stored
    # Nothing is asked at login until the app's first code confirms the enrolment.
    assert not (await accounts.stored(account.email)).two_factor_enabled
    assert (await login(auth, account)).access_token


async def test_enrolling_needs_the_password_and_a_session(auth, accounts, principal, rejected):
    account = await accounts.create()

    wrong = await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.StartTwoFactorEnrollment(
            auth_pb2.StartTwoFactorEnrollmentRequest(current_password="not mine"),
            metadata=account.metadata,
        ),
    )
    await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.StartTwoFactorEnrollment(
            auth_pb2.StartTwoFactorEnrollmentRequest(), metadata=account.metadata
        ),
    )
    as_key = await rejected(
        grpc.StatusCode.PERMISSION_DENIED,
        auth.StartTwoFactorEnrollment(
            auth_pb2.StartTwoFactorEnrollmentRequest(current_password=account.password),
            metadata=principal(account.id, auth_method="api_key"),
        ),
    )

    assert wrong.details() == "current_password is incorrect"
    assert error_code(as_key) == "session_required"


async def test_the_first_code_turns_it_on_and_answers_recovery_codes_kept_only_hashed(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    enrollment = await auth.StartTwoFactorEnrollment(
        auth_pb2.StartTwoFactorEnrollmentRequest(current_password=account.password),
        metadata=account.metadata,
    )
    app = pyotp.TOTP(enrollment.secret)
    wrong = await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.ConfirmTwoFactorEnrollment(
            auth_pb2.ConfirmTwoFactorEnrollmentRequest(code=a_wrong_code(app)),
            metadata=account.metadata,
        ),
    )
    assert error_code(wrong) == "invalid_second_factor"

    confirmed = await auth.ConfirmTwoFactorEnrollment(
        auth_pb2.ConfirmTwoFactorEnrollmentRequest(code=app.now()), metadata=account.metadata
    )

    assert len(confirmed.codes) == 10 == len(set(confirmed.codes))
    assert all(RECOVERY_CODE_SHAPE.fullmatch(code) for code in confirmed.codes)
    hashes = {
        row.code_hash
        for row in await database.rows(
            "SELECT code_hash FROM auth.recovery_codes WHERE user_id = :id", id=account.id
        )
    }
    assert hashes == {
        hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in confirmed.codes
    }
    assert (await accounts.stored(account.email)).two_factor_enabled
    [enabled] = await notices(database, account.id, "user.two_factor_enabled")
    assert enabled.HasField("two_factor_changed")


async def test_a_login_then_takes_a_code_and_never_the_same_one_twice(auth, accounts, rejected):
    account = await accounts.create()
    app, _ = await enrolled(auth, account)

    missing = await rejected(grpc.StatusCode.UNAUTHENTICATED, login(auth, account))
    wrong_password = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(
            auth_pb2.LoginRequest(
                email=account.email, password="not mine", second_factor_code=next_code(app)
            )
        ),
    )
    code = next_code(app)
    assert (await login(auth, account, code)).access_token
    replayed = await rejected(grpc.StatusCode.UNAUTHENTICATED, login(auth, account, code))
    garbage = await rejected(grpc.StatusCode.UNAUTHENTICATED, login(auth, account, "12 34"))

    assert error_code(missing) == "second_factor_required"
    # The password is checked first: a wrong one says nothing about a second factor.
    assert error_code(wrong_password) == "unauthenticated"
    assert error_code(replayed) == error_code(garbage) == "invalid_second_factor"


async def test_a_recovery_code_logs_in_once_however_it_is_typed_and_the_owner_is_told(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    _, codes = await enrolled(auth, account)

    assert (await login(auth, account, f"  {codes[0].upper().replace('-', ' ')} ")).access_token
    again = await rejected(grpc.StatusCode.UNAUTHENTICATED, login(auth, account, codes[0]))

    assert error_code(again) == "invalid_second_factor"
    [used] = await notices(database, account.id, "user.recovery_code_used")
    assert used.two_factor_changed.recovery_codes_left == 9


async def test_new_recovery_codes_end_the_old_ones(auth, accounts, rejected):
    account = await accounts.create()
    app, old_codes = await enrolled(auth, account)

    fresh = await auth.RegenerateRecoveryCodes(
        auth_pb2.RegenerateRecoveryCodesRequest(
            current_password=account.password, code=next_code(app)
        ),
        metadata=account.metadata,
    )

    assert set(fresh.codes).isdisjoint(old_codes)
    await rejected(grpc.StatusCode.UNAUTHENTICATED, login(auth, account, old_codes[1]))
    assert (await login(auth, account, fresh.codes[0])).access_token


async def test_turning_it_off_takes_the_password_and_a_code(auth, accounts, database, rejected):
    account = await accounts.create()
    app, codes = await enrolled(auth, account)

    def turn_off(code: str):
        return auth.DisableTwoFactor(
            auth_pb2.DisableTwoFactorRequest(current_password=account.password, code=code),
            metadata=account.metadata,
        )

    await rejected(grpc.StatusCode.INVALID_ARGUMENT, turn_off(""))
    wrong = await rejected(grpc.StatusCode.PERMISSION_DENIED, turn_off(codes[0][::-1]))
    assert error_code(wrong) == "invalid_second_factor"
    assert (await accounts.stored(account.email)).two_factor_enabled

    await turn_off(codes[3])

    assert not (await accounts.stored(account.email)).two_factor_enabled
    assert (await login(auth, account)).access_token
    [disabled] = await notices(database, account.id, "user.two_factor_disabled")
    assert disabled.two_factor_changed.method == "settings"
    assert (
        await database.value(
            "SELECT count(*) FROM auth.recovery_codes WHERE user_id = :id", id=account.id
        )
        == 0
    )
    not_on = await rejected(grpc.StatusCode.FAILED_PRECONDITION, turn_off(next_code(app)))
    assert error_code(not_on) == "two_factor_not_enabled"


async def test_an_admin_turns_it_off_for_an_owner_who_lost_the_app_without_a_code(
    auth, accounts, database, rejected
):
    admin = await accounts.admin()
    owner, bystander = await accounts.create(), await accounts.create()
    await enrolled(auth, owner)
    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.DisableTwoFactor(
            auth_pb2.DisableTwoFactorRequest(user_id=owner.id, current_password=bystander.password),
            metadata=bystander.metadata,
        ),
    )

    await auth.DisableTwoFactor(
        auth_pb2.DisableTwoFactorRequest(user_id=owner.id, current_password=admin.password),
        metadata=admin.metadata,
    )

    assert (await login(auth, owner)).access_token
    [disabled] = await notices(database, owner.id, "user.two_factor_disabled")
    assert disabled.two_factor_changed.method == "administrator"


async def test_enrolment_states_are_named(auth, accounts, rejected):
    account = await accounts.create()
    nothing_to_confirm = await rejected(
        grpc.StatusCode.FAILED_PRECONDITION,
        auth.ConfirmTwoFactorEnrollment(
            auth_pb2.ConfirmTwoFactorEnrollmentRequest(code="123456"), metadata=account.metadata
        ),
    )
    await enrolled(auth, account)
    already_on = await rejected(
        grpc.StatusCode.FAILED_PRECONDITION,
        auth.StartTwoFactorEnrollment(
            auth_pb2.StartTwoFactorEnrollmentRequest(current_password=account.password),
            metadata=account.metadata,
        ),
    )

    assert error_code(nothing_to_confirm) == "no_two_factor_enrollment"
    assert error_code(already_on) == "two_factor_enabled"


async def test_concurrent_logins_with_one_code_let_one_in(auth, accounts):
    account = await accounts.create()
    app, _ = await enrolled(auth, account)
    code = next_code(app)

    outcomes = await asyncio.gather(
        *(login(auth, account, code) for _ in range(4)), return_exceptions=True
    )

    assert sum(isinstance(outcome, auth_pb2.TokenPair) for outcome in outcomes) == 1


# The service itself, with the clock set by the test.


@pytest.fixture
async def sessions(settings: AuthSettings) -> AsyncIterator:
    engine = create_engine_for(settings.database_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


async def test_a_code_is_good_one_step_either_side_of_now_and_no_further(
    auth, accounts, sessions, settings
):
    account = await accounts.create()
    app, _ = await enrolled(auth, account)
    terms = TwoFactorTerms.from_secret(settings.service_token_secret, issuer="ObjectVision")
    # Far enough ahead that no step near it has been used by the enrolment.
    now = datetime.now(UTC) + timedelta(hours=1)

    async def accepted(code_time: datetime) -> bool:
        async with sessions() as session:
            user = await session.get(User, uuid.UUID(account.id))
            try:
                await two_factor.check_login(
                    session=session, terms=terms, user=user, code=app.at(code_time), now=now
                )
            except Unauthenticated:
                return False
            await session.commit()
            return True

    assert not await accepted(now - 2 * STEP)
    assert not await accepted(now + 2 * STEP)
    assert await accepted(now - STEP)
    # Once a step is used, its own and every earlier step's code are refused.
    assert not await accepted(now - STEP)
    assert await accepted(now)
    assert await accepted(now + STEP)


# REQUIRE_TWO_FACTOR_FOR_ADMINS: a deployment started beside the session's with the policy on.


async def test_where_admins_need_a_second_factor_an_admin_without_one_acts_as_a_user(
    accounts, database, rejected, settings
):
    admin = await accounts.create()
    await database.execute("UPDATE auth.users SET is_admin = true WHERE id = :id", id=admin.id)

    async with started(settings.model_copy(update={"require_two_factor_for_admins": True})) as auth:
        pair = await login(auth, admin)
        principal = await auth.VerifyToken(
            auth_pb2.VerifyTokenRequest(access_token=pair.access_token)
        )
        key = await auth.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="admin script"), metadata=admin.metadata
        )
        by_key = await auth.AuthenticateApiKey(
            auth_pb2.AuthenticateApiKeyRequest(api_key=key.secret)
        )
        held_back = await rejected(
            grpc.StatusCode.PERMISSION_DENIED,
            auth.ListUsers(auth_pb2.ListUsersRequest(), metadata=admin.metadata),
        )

        assert principal.is_admin is False and by_key.is_admin is False
        assert error_code(held_back) == "admin_two_factor_required"
        assert "two-factor authentication" in held_back.details()

        app, _ = await enrolled(auth, admin)
        with_factor = await login(auth, admin, next_code(app))
        principal = await auth.VerifyToken(
            auth_pb2.VerifyTokenRequest(access_token=with_factor.access_token)
        )
        assert principal.is_admin is True
        assert (await auth.ListUsers(auth_pb2.ListUsersRequest(), metadata=admin.metadata)).total


async def test_where_admins_need_a_second_factor_turning_it_off_ends_the_admins_sessions(
    accounts, database, rejected, settings
):
    admin = await accounts.create()
    await database.execute("UPDATE auth.users SET is_admin = true WHERE id = :id", id=admin.id)

    async with started(settings.model_copy(update={"require_two_factor_for_admins": True})) as auth:
        app, codes = await enrolled(auth, admin)
        pair = await login(auth, admin, next_code(app))
        await auth.DisableTwoFactor(
            auth_pb2.DisableTwoFactorRequest(current_password=admin.password, code=codes[0]),
            metadata=admin.metadata,
        )

        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token)),
        )
        fresh = await login(auth, admin)
        principal = await auth.VerifyToken(
            auth_pb2.VerifyTokenRequest(access_token=fresh.access_token)
        )
        assert principal.is_admin is False


async def test_without_the_policy_an_admins_rights_do_not_depend_on_a_second_factor(
    auth, accounts, database
):
    admin = await accounts.create()
    await database.execute("UPDATE auth.users SET is_admin = true WHERE id = :id", id=admin.id)

    principal = await auth.VerifyToken(
        auth_pb2.VerifyTokenRequest(access_token=(await login(auth, admin)).access_token)
    )

    assert principal.is_admin is True
