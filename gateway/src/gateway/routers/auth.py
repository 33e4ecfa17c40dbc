"""Sign-up, login, token refresh, logout and forgotten passwords."""

import grpc
from fastapi import APIRouter, Depends, Response

from gateway.auth.dependencies import (
    LOGIN_PATH,
    CurrentAccessToken,
    LoginFailuresDep,
    SessionUpstream,
    ThrottledForgotPassword,
    ThrottledLoginCredentials,
    throttle_reset_password,
    throttle_signup,
)
from gateway.dependencies import PublicUpstream
from gateway.errors import SERVER_ERRORS, error_responses
from gateway.ratelimit import OPENAPI_HEADERS as RATE_LIMIT_HEADERS
from gateway.schemas.auth import (
    ForgotPasswordAcceptedOut,
    LoginForm,
    LoginJson,
    LogoutIn,
    RefreshIn,
    ResetPasswordIn,
    SignUpAcceptedOut,
    SignUpIn,
    TokenPairOut,
)
from objectvision.v1 import auth_pb2

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
    credentials: ThrottledLoginCredentials, failures: LoginFailuresDep, upstream: PublicUpstream
) -> TokenPairOut:
    try:
        pair = await upstream.call(
            upstream.auth.Login,
            auth_pb2.LoginRequest(email=credentials.email, password=credentials.password),
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
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
