"""Sign-up, login, token refresh, logout, forgotten passwords and email verification."""

from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, Response

from gateway.auth.dependencies import (
    LOGIN_PATH,
    AccountUpstream,
    AuthorisedRoute,
    CurrentAccessToken,
    LoginFailuresDep,
    SessionUpstream,
    ThrottledForgotPassword,
    ThrottledLoginCredentials,
    ThrottledResendVerification,
    throttle_reset_password,
    throttle_signup,
    throttle_verify_email,
)
from gateway.dependencies import ClientIp, PublicUpstream
from gateway.errors import SERVER_ERRORS, domain_code_of, error_responses
from gateway.ratelimit import OPENAPI_HEADERS as RATE_LIMIT_HEADERS
from gateway.schemas.auth import (
    EmailVerifiedOut,
    ForgotPasswordAcceptedOut,
    LoginForm,
    LoginJson,
    LogoutIn,
    RefreshIn,
    ResetPasswordIn,
    SignUpAcceptedOut,
    SignUpIn,
    TokenPairOut,
    VerificationResentOut,
    VerifyEmailIn,
)
from objectvision.v1 import auth_pb2
from objectvision_common.errors import SecondFactorRequired

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=error_responses(*SERVER_ERRORS))

# The login body is parsed by a dependency (it accepts two content types), so its OpenAPI
# request body is declared here by hand.
_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginJson.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
        },
    }
}


def _token_pair(pair: auth_pb2.TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/signup",
    status_code=202,
    summary="Create an account",
    dependencies=[Depends(throttle_signup)],
    responses={**error_responses(413, 422, 429), 202: {"headers": RATE_LIMIT_HEADERS}},
)
async def signup(body: SignUpIn, upstream: PublicUpstream) -> SignUpAcceptedOut:
    """Create an account, then log in with the same email and password.

    The answer is the same, in about the same time, whether or not the address already has
    an account: for a taken address the account is left unchanged and its owner is told by
    email, so this route cannot be used to find out who has an account.
    """
    await upstream.call(
        upstream.auth.SignUp,
        auth_pb2.SignUpRequest(email=body.email, password=body.password, name=body.name),
    )
    return SignUpAcceptedOut(email=body.email)


@router.post(
    LOGIN_PATH.removeprefix("/api/v1/auth"),
    summary="Log in with email and password (JSON or OAuth2 password form)",
    responses={
        **error_responses(400, 401, 413, 415, 422, 429),
        200: {"headers": RATE_LIMIT_HEADERS},
    },
    openapi_extra=_LOGIN_BODY,
)
async def login(
    credentials: ThrottledLoginCredentials,
    failures: LoginFailuresDep,
    upstream: PublicUpstream,
    ip: ClientIp,
    user_agent: Annotated[str, Header(include_in_schema=False)] = "",
) -> TokenPairOut:
    """For an account with two-factor authentication (ADR 0034) the right password alone is
    401 `second_factor_required`: send the same request again with `second_factor_code`, the
    authenticator app's code or a recovery code (a wrong one is 401 `invalid_second_factor`).
    Wrong passwords and wrong codes count against the login limits alike."""
    try:
        pair = await upstream.call(
            upstream.auth.Login,
            auth_pb2.LoginRequest(
                email=credentials.email,
                password=credentials.password,
                second_factor_code=credentials.second_factor_code,
                # Shown in the account's session list (ADR 0035).
                client_ip=ip,
                user_agent=user_agent,
            ),
        )
    except grpc.aio.AioRpcError as error:
        # The password was right when only the code is missing: not a failed guess.
        if (
            error.code() == grpc.StatusCode.UNAUTHENTICATED
            and domain_code_of(error) != SecondFactorRequired.code
        ):
            await failures.record(credentials.email)
        raise
    return _token_pair(pair)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new token pair (the old one stops working)",
    responses=error_responses(401, 413, 422),
)
async def refresh(body: RefreshIn, upstream: PublicUpstream) -> TokenPairOut:
    pair = await upstream.call(
        upstream.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=body.refresh_token)
    )
    return _token_pair(pair)


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    summary="End the session: the access token and its refresh-token family stop working",
    responses=error_responses(401, 413, 422),
)
async def logout(body: LogoutIn, access: CurrentAccessToken, upstream: SessionUpstream) -> Response:
    await upstream.call(
        upstream.auth.Logout,
        auth_pb2.LogoutRequest(access_token=access.token, refresh_token=body.refresh_token),
    )
    return Response(status_code=204)


@router.post(
    "/forgot-password",
    status_code=202,
    summary="Ask for a link to choose a new password, sent to the account's email",
    responses={**error_responses(413, 422, 429), 202: {"headers": RATE_LIMIT_HEADERS}},
)
async def forgot_password(
    body: ThrottledForgotPassword, upstream: PublicUpstream
) -> ForgotPasswordAcceptedOut:
    """For an active account with this email, send a single-use link to
    `PUBLIC_BASE_URL/#/reset-password?token=…` that works for `PASSWORD_RESET_TTL_SECONDS`
    (30 minutes by default); asking again ends the earlier link.

    The answer is the same, after the same work, whether or not the address has an account,
    so this route cannot be used to find out who has one.
    """
    await upstream.call(
        upstream.auth.RequestPasswordReset, auth_pb2.RequestPasswordResetRequest(email=body.email)
    )
    return ForgotPasswordAcceptedOut()


@router.post(
    "/reset-password",
    status_code=204,
    response_class=Response,
    summary="Choose a new password with the token of an emailed reset link",
    dependencies=[Depends(throttle_reset_password)],
    responses={**error_responses(413, 422, 429), 204: {"headers": RATE_LIMIT_HEADERS}},
)
async def reset_password(body: ResetPasswordIn, upstream: PublicUpstream) -> None:
    """Set the new password (the sign-up rules: 8 to 128 characters) and use the link up.
    Every session of the account ends, as after a password change: its refresh tokens and
    access tokens stop working; log in with the new password.

    A token that is unknown, already used, replaced by a newer link or expired is one 422
    `invalid_reset_token`, whichever it was: ask for a new link.
    """
    await upstream.call(
        upstream.auth.ResetPassword,
        auth_pb2.ResetPasswordRequest(token=body.token, new_password=body.new_password),
    )
    # Nothing returned: FastAPI builds the 204 itself and adds the throttle's RateLimit
    # fields to it, which it would not do to a Response returned here.


@router.post(
    "/verify-email",
    summary="Confirm the account's email address with the token of an emailed link",
    dependencies=[Depends(throttle_verify_email)],
    responses={**error_responses(409, 413, 422, 429), 200: {"headers": RATE_LIMIT_HEADERS}},
)
async def verify_email(body: VerifyEmailIn, upstream: PublicUpstream) -> EmailVerifiedOut:
    """Mark the address the link was sent to as verified and use the link up. No session is
    needed: the token is the credential. Sign-up and every change of address mail a link to
    `PUBLIC_BASE_URL/#/verify-email?token=…` that works once, for
    `EMAIL_VERIFICATION_TTL_SECONDS` (48 hours by default). An address listed in
    `ADMIN_EMAILS` makes its account an admin now, not at sign-up (log in again for a token
    that says so).

    A link mailed for a change of address (`PATCH /users/me` with a new `email`) makes the
    change now: the new address becomes the one to sign in with, verified
    (`address_changed: true`), and the old address is told. If another account has taken
    the address meanwhile, nothing changes: 409 `email_taken`.

    A token that is unknown, already used, replaced by a newer link, expired or sent to an
    address the account no longer has (or no longer waits to move to) is one 422
    `invalid_verification_token`, whichever it was: ask for a new link
    (`POST /api/v1/auth/resend-verification`, or the change again).
    """
    verified = await upstream.call(
        upstream.auth.VerifyEmail, auth_pb2.VerifyEmailRequest(token=body.token)
    )
    return EmailVerifiedOut(email=verified.email, address_changed=verified.address_changed)


async def resend_verification(
    principal: ThrottledResendVerification, upstream: AccountUpstream
) -> VerificationResentOut:
    """Mail a new verification link to the caller's address; earlier links stop working.
    A signed-in session only (an API key is 403 `session_required`), limited per account
    (`RATE_LIMIT_RESEND_VERIFICATION`). An address that is verified already is 409
    `email_already_verified`, and nothing is sent.
    """
    await upstream.call(
        upstream.auth.ResendEmailVerification, auth_pb2.ResendEmailVerificationRequest()
    )
    return VerificationResentOut()


# Added by hand rather than with the decorator: the one route of this public router that
# needs a signed-in caller, so it takes AuthorisedRoute, which documents the 403 its
# Authorisation answers an API key (as signed_in_router's routes do), and declares the 401.
router.add_api_route(
    "/resend-verification",
    resend_verification,
    methods=["POST"],
    status_code=202,
    summary="Mail a new link that confirms the signed-in account's email address",
    responses={**error_responses(401, 409, 429), 202: {"headers": RATE_LIMIT_HEADERS}},
    route_class_override=AuthorisedRoute,
)
