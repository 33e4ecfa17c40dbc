"""The caller's profile and settings, and other users' profiles where the auth service allows.

Another user's id is answered 404 by the auth service (admins excepted), so ids cannot be
probed. `{user_id:uuid}` only matches UUIDs, so `/me` and `/get-profile` are never read as
ids, and a malformed id is a 404 like any other path that names nothing.

Any credential may read the caller's own profile and settings (a script's "who am I"); every
change, deleting the account and the routes that name a user by id need a signed-in session
(`AccountUpstream`: an API key is a 403 `session_required`).
"""

import uuid
from typing import Annotated

from fastapi import Depends, Query

from gateway.auth.dependencies import (
    AccountUpstream,
    AttemptsDep,
    CurrentPrincipal,
    PasswordConfirmationsDep,
    UserUpstream,
    signed_in_router,
)
from gateway.dependencies import PageLimit, PageOffset, SettingsDep
from gateway.errors import error_responses
from gateway.schemas.base import UNICODE_TEXT
from gateway.schemas.users import (
    AccountDeletionAcceptedOut,
    AccountListOut,
    AccountStatusIn,
    AccountStatusOut,
    DeleteAccountIn,
    SettingsOut,
    SettingsUpdateIn,
    UserOut,
    UserUpdateIn,
)
from gateway.upstream import Upstream
from objectvision.v1 import auth_pb2, common_pb2
from objectvision_common.limits import DEFAULT_PAGE_LIMIT

router = signed_in_router("/api/v1/users", "users")


async def current_user(principal: CurrentPrincipal, upstream: UserUpstream) -> auth_pb2.User:
    return await upstream.call(
        upstream.auth.GetUser, auth_pb2.GetUserRequest(user_id=principal.user_id)
    )


async def visible_user(user_id: uuid.UUID, upstream: AccountUpstream) -> auth_pb2.User:
    """The user with this id, if the caller may see them (else 404)."""
    return await upstream.call(upstream.auth.GetUser, auth_pb2.GetUserRequest(user_id=str(user_id)))


CurrentUser = Annotated[auth_pb2.User, Depends(current_user)]
VisibleUser = Annotated[auth_pb2.User, Depends(visible_user)]


async def _update_user(upstream: Upstream, user_id: str, body: UserUpdateIn) -> UserOut:
    return UserOut.from_proto(await upstream.call(upstream.auth.UpdateUser, body.to_proto(user_id)))


@router.get("/get-profile", summary="The caller's profile (same as /users/me)")
async def get_profile(user: CurrentUser) -> UserOut:
    return UserOut.from_proto(user)


@router.get("/me", summary="The caller's profile")
async def get_me(user: CurrentUser) -> UserOut:
    return UserOut.from_proto(user)


@router.patch(
    "/me",
    summary="Change the caller's profile",
    responses=error_responses(403, 413, 422, 429),
)
async def update_me(
    body: UserUpdateIn,
    principal: CurrentPrincipal,
    upstream: AccountUpstream,
    confirmations: PasswordConfirmationsDep,
    settings: SettingsDep,
    attempts: AttemptsDep,
) -> UserOut:
    """A new email or password needs `current_password`; wrong ones are limited per account
    (RATE_LIMIT_PASSWORD_CONFIRM, then 429).

    A new email does not change the sign-in address yet (ADR 0033): it waits as
    `pending_email`, a link goes to it, and opening that link
    (`POST /api/v1/auth/verify-email`) makes the change. The answer is the same whether or
    not another account has the address (that account's owner is told instead, and no link
    is sent). Asking for the current address withdraws a waiting change. Changes of address
    are limited per account (RATE_LIMIT_EMAIL_CHANGE, then 429), since each mails a stranger's
    inbox."""
    if body.email is not None:
        await attempts.take_one("email-change", principal.user_id, settings.rate_limit_email_change)
    if body.current_password is None:
        return await _update_user(upstream, principal.user_id, body)
    return await confirmations.confirm(lambda: _update_user(upstream, principal.user_id, body))


@router.delete(
    "/me",
    status_code=202,
    summary="Delete the caller's account and everything it stored",
    responses=error_responses(403, 413, 422, 429),
)
async def delete_me(
    body: DeleteAccountIn, upstream: AccountUpstream, confirmations: PasswordConfirmationsDep
) -> AccountDeletionAcceptedOut:
    """Delete the caller's account, given its password again (`current_password`; a wrong
    one is the same 403 a password change answers, and deletes nothing).

    From this answer on the account cannot log in, its access and refresh tokens and its API
    keys are refused, and its address can sign up for a new, empty account. Its images,
    detections, jobs (running ones are cancelled), videos, webhooks and deliveries are
    erased in the background by each service, and the address gets one last email saying
    the account was deleted. There is no undo. Wrong passwords are limited per account as
    for a password change (RATE_LIMIT_PASSWORD_CONFIRM, then 429).
    """
    request = auth_pb2.DeleteAccountRequest(current_password=body.current_password)
    await confirmations.confirm(lambda: upstream.call(upstream.auth.DeleteAccount, request))
    return AccountDeletionAcceptedOut()


@router.get("/me/settings", summary="The caller's settings")
async def get_settings(principal: CurrentPrincipal, upstream: UserUpstream) -> SettingsOut:
    settings = await upstream.call(
        upstream.auth.GetSettings, auth_pb2.GetSettingsRequest(user_id=principal.user_id)
    )
    return SettingsOut.from_proto(settings)


@router.patch(
    "/me/settings", summary="Change the caller's settings", responses=error_responses(413, 422)
)
async def update_settings(
    body: SettingsUpdateIn, principal: CurrentPrincipal, upstream: AccountUpstream
) -> SettingsOut:
    settings = await upstream.call(upstream.auth.UpdateSettings, body.to_proto(principal.user_id))
    return SettingsOut.from_proto(settings)


@router.get(
    "",
    summary="Look accounts up by email or id (admins)",
    responses=error_responses(403, 422),
)
async def list_accounts(
    upstream: AccountUpstream,
    q: Annotated[
        str,
        Query(
            max_length=320,
            description="Part of the email (any case), or a whole account id; empty: all.",
        ),
        UNICODE_TEXT,
    ] = "",
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    offset: PageOffset = 0,
) -> AccountListOut:
    """Newest first, with whether each is suspended and whether it is an admin: where an
    admin finds the id to suspend, restore, promote or demote, or to read the usage of."""
    listed = await upstream.call(
        upstream.auth.ListUsers,
        auth_pb2.ListUsersRequest(query=q, page=common_pb2.Page(limit=limit, offset=offset)),
    )
    return AccountListOut.from_proto(listed)


@router.get("/{user_id:uuid}", summary="A user's profile", responses=error_responses(404, 422))
async def get_user(user: VisibleUser) -> UserOut:
    return UserOut.from_proto(user)


@router.patch(
    "/{user_id:uuid}",
    summary="Change a user's profile",
    responses=error_responses(403, 404, 413, 422),
)
async def update_user(user_id: uuid.UUID, body: UserUpdateIn, upstream: AccountUpstream) -> UserOut:
    return await _update_user(upstream, str(user_id), body)


@router.patch(
    "/{user_id:uuid}/status",
    summary="Suspend or restore an account, grant or withdraw admin rights (admins)",
    responses=error_responses(403, 404, 409, 413, 422),
)
async def set_account_status(
    user_id: uuid.UUID, body: AccountStatusIn, upstream: AccountUpstream
) -> AccountStatusOut:
    """Suspending (`active: false`) or demoting (`admin: false`) ends every session of the
    account at once; a suspended account cannot log in and its API keys stop working until
    it is restored (`active: true`). Promoting or restoring shows from the account's next
    login or refresh. Admins only (403 otherwise), and not on their own account (409
    `own_account`). Work the account queued before still runs to the end."""
    answer = await upstream.call(upstream.auth.SetAccountStatus, body.to_proto(str(user_id)))
    return AccountStatusOut.from_proto(answer)
