"""Two-factor authentication with an authenticator app (ADR 0034): enrolling it, new recovery
codes, turning it off. Signed-in sessions only (an API key is 403 `session_required`): a
second factor protects the sessions that make keys, so a key must not be able to change it.

Every route that takes the password counts wrong ones per account
(RATE_LIMIT_PASSWORD_CONFIRM, then 429), and a wrong code with them, so neither can be
guessed without end.
"""

import uuid

from fastapi import Response

from gateway.auth.dependencies import AccountUpstream, PasswordConfirmationsDep, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.two_factor import (
    RecoveryCodesOut,
    TwoFactorCodeIn,
    TwoFactorConfirmationIn,
    TwoFactorEnrollmentOut,
    TwoFactorPasswordIn,
)
from objectvision.v1 import auth_pb2

router = signed_in_router("/api/v1/users", "two-factor")


@router.post(
    "/me/two-factor",
    status_code=201,
    summary="Start enrolling an authenticator app",
    responses=error_responses(403, 409, 413, 422, 429),
)
async def start_two_factor(
    body: TwoFactorPasswordIn, upstream: AccountUpstream, confirmations: PasswordConfirmationsDep
) -> TwoFactorEnrollmentOut:
    """A new secret, as text and as a QR code; nothing changes until its first code is sent
    to `/me/two-factor/confirm`. An earlier enrolment not confirmed is replaced. 409
    `two_factor_enabled` when an app is enrolled already (turn it off first)."""
    request = auth_pb2.StartTwoFactorEnrollmentRequest(current_password=body.current_password)
    enrollment = await confirmations.confirm(
        lambda: upstream.call(upstream.auth.StartTwoFactorEnrollment, request)
    )
    return TwoFactorEnrollmentOut.from_proto(enrollment)


@router.post(
    "/me/two-factor/confirm",
    summary="Turn two-factor authentication on with the app's first code",
    responses=error_responses(403, 409, 413, 422),
)
async def confirm_two_factor(body: TwoFactorCodeIn, upstream: AccountUpstream) -> RecoveryCodesOut:
    """From now on a login takes a code from the app too (or one of the recovery codes
    answered here, once each). A wrong code is 422 `invalid_second_factor`; no enrolment
    waiting is 409 `no_two_factor_enrollment`. The account's address is told."""
    confirmed = await upstream.call(
        upstream.auth.ConfirmTwoFactorEnrollment,
        auth_pb2.ConfirmTwoFactorEnrollmentRequest(code=body.code),
    )
    return RecoveryCodesOut(recovery_codes=list(confirmed.codes))


@router.post(
    "/me/two-factor/recovery-codes",
    summary="New recovery codes (the old ones stop working)",
    responses=error_responses(403, 409, 413, 422, 429),
)
async def regenerate_recovery_codes(
    body: TwoFactorConfirmationIn,
    upstream: AccountUpstream,
    confirmations: PasswordConfirmationsDep,
) -> RecoveryCodesOut:
    request = auth_pb2.RegenerateRecoveryCodesRequest(
        current_password=body.current_password, code=body.code
    )
    codes = await confirmations.confirm(
        lambda: upstream.call(upstream.auth.RegenerateRecoveryCodes, request)
    )
    return RecoveryCodesOut(recovery_codes=list(codes.codes))


@router.delete(
    "/me/two-factor",
    status_code=204,
    response_class=Response,
    summary="Turn two-factor authentication off",
    responses=error_responses(403, 409, 413, 422, 429),
)
async def disable_two_factor(
    body: TwoFactorConfirmationIn,
    upstream: AccountUpstream,
    confirmations: PasswordConfirmationsDep,
) -> Response:
    """Takes the password and a code (from the app, or a recovery code); logins then take the
    password only. The account's address is told. 409 `two_factor_not_enabled` when it is
    off."""
    request = auth_pb2.DisableTwoFactorRequest(
        current_password=body.current_password, code=body.code
    )
    await confirmations.confirm(lambda: upstream.call(upstream.auth.DisableTwoFactor, request))
    return Response(status_code=204)


@router.delete(
    "/{user_id:uuid}/two-factor",
    status_code=204,
    response_class=Response,
    summary="Turn another account's two-factor authentication off (admins)",
    responses=error_responses(403, 404, 409, 413, 422, 429),
)
async def disable_two_factor_for(
    user_id: uuid.UUID,
    body: TwoFactorPasswordIn,
    upstream: AccountUpstream,
    confirmations: PasswordConfirmationsDep,
) -> Response:
    """For an owner who lost the app and the recovery codes: the admin's own password, no
    code. The account's owner is told that an administrator did it."""
    request = auth_pb2.DisableTwoFactorRequest(
        user_id=str(user_id), current_password=body.current_password
    )
    await confirmations.confirm(lambda: upstream.call(upstream.auth.DisableTwoFactor, request))
    return Response(status_code=204)
