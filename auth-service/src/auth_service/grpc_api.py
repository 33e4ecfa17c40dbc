"""The AuthService servicer: parse the request, call a service function, shape the reply.

Each RPC opens one database session; the service functions own the transactions. Errors are
domain errors, mapped to gRPC status by the shared server interceptor.
"""

# Method names are fixed by the generated AuthServiceServicer.
# ruff: noqa: N802

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from google.protobuf import empty_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import outbox
from auth_service.api_keys import service as api_keys_service
from auth_service.api_keys.models import ApiKey
from auth_service.database import utcnow
from auth_service.email_verifications import service as email_verifications_service
from auth_service.opaque_tokens import LinkTerms
from auth_service.password_resets import service as password_resets_service
from auth_service.passwords import PasswordHasher
from auth_service.preferences import service as preferences_service
from auth_service.preferences.models import UserSettings
from auth_service.tokens import service as tokens_service
from auth_service.tokens import sessions as sessions_service
from auth_service.tokens.sessions import LoginOrigin
from auth_service.two_factor import service as two_factor_service
from auth_service.users import service as users_service
from auth_service.users.models import User
from auth_service.users.notices import SignUpNotices
from auth_service.users.schemas import Caller
from objectvision.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from objectvision_common.errors import InvalidArgument, NotFound, PermissionDenied
from objectvision_common.limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, page_bounds
from objectvision_common.servicer import ServicerContext, caller_principal, timestamp

BEARER = "Bearer"
AUTH_METHOD_JWT = "jwt"
AUTH_METHOD_API_KEY = "api_key"


@dataclass(frozen=True, kw_only=True, eq=False)
class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    sessions: async_sessionmaker[AsyncSession]
    passwords: PasswordHasher
    tokens: tokens_service.SessionTokens
    signup_notices: SignUpNotices
    admin_emails: frozenset[str]
    service_token_secret: str
    password_reset_links: LinkTerms
    email_verification_links: LinkTerms
    two_factor: two_factor_service.TwoFactorTerms

    # Sessions and credentials: called by the gateway before there is a principal.

    async def SignUp(
        self, request: auth_pb2.SignUpRequest, context: ServicerContext
    ) -> auth_pb2.SignUpResponse:
        async with self.sessions() as session:
            await users_service.register(
                session=session,
                passwords=self.passwords,
                notices=self.signup_notices,
                verification=self.email_verification_links,
                email=request.email,
                password=request.password,
                name=request.name,
            )
        return auth_pb2.SignUpResponse()

    async def Login(
        self, request: auth_pb2.LoginRequest, context: ServicerContext
    ) -> auth_pb2.TokenPair:
        async with self.sessions() as session:
            pair = await tokens_service.login(
                session=session,
                passwords=self.passwords,
                tokens=self.tokens,
                two_factor=self.two_factor,
                email=request.email,
                password=request.password,
                second_factor_code=(
                    request.second_factor_code if request.HasField("second_factor_code") else None
                ),
                origin=LoginOrigin(client_ip=request.client_ip, user_agent=request.user_agent),
            )
        return _token_pair_message(pair)

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: ServicerContext
    ) -> auth_pb2.TokenPair:
        async with self.sessions() as session:
            pair = await tokens_service.refresh_session(
                session=session, tokens=self.tokens, refresh_token=request.refresh_token
            )
        return _token_pair_message(pair)

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self.sessions() as session:
            await tokens_service.logout(
                session=session,
                tokens=self.tokens,
                access_token=request.access_token,
                refresh_token=request.refresh_token,
            )
        return empty_pb2.Empty()

    async def VerifyToken(
        self, request: auth_pb2.VerifyTokenRequest, context: ServicerContext
    ) -> common_pb2.Principal:
        async with self.sessions() as session:
            verified = await tokens_service.verify_access_token(
                session=session, tokens=self.tokens, access_token=request.access_token
            )
        return common_pb2.Principal(
            user_id=str(verified.user.id),
            is_admin=self.tokens.admins.grants(verified.user),
            email_verified=verified.user.email_verified_at is not None,
            auth_method=AUTH_METHOD_JWT,
            credential_id=verified.claims.jti,
            session_id=str(verified.claims.session_id),
            credential_expires_at=timestamp(verified.claims.expires_at),
        )

    async def GetJwks(self, request: empty_pb2.Empty, context: ServicerContext) -> auth_pb2.Jwks:
        return auth_pb2.Jwks(
            keys=[auth_pb2.JsonWebKey(**jwk) for jwk in self.tokens.access_tokens.jwks()],
            issuer=self.tokens.access_tokens.issuer,
            audience=self.tokens.access_tokens.audience,
        )

    async def AuthenticateApiKey(
        self, request: auth_pb2.AuthenticateApiKeyRequest, context: ServicerContext
    ) -> common_pb2.Principal:
        async with self.sessions() as session:
            key, user = await api_keys_service.authenticate(
                session=session, api_key=request.api_key
            )
        return common_pb2.Principal(
            user_id=str(user.id),
            is_admin=self.tokens.admins.grants(user),
            email_verified=user.email_verified_at is not None,
            auth_method=AUTH_METHOD_API_KEY,
            credential_id=str(key.id),
            credential_expires_at=timestamp(key.expires_at),
            scopes=key.scopes,
        )

    async def RequestPasswordReset(
        self, request: auth_pb2.RequestPasswordResetRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self.sessions() as session:
            await password_resets_service.request_reset(
                session=session, email=request.email, terms=self.password_reset_links
            )
        return empty_pb2.Empty()

    async def ResetPassword(
        self, request: auth_pb2.ResetPasswordRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self.sessions() as session:
            await password_resets_service.reset_password(
                session=session,
                passwords=self.passwords,
                revoked=self.tokens.revoked,
                token=request.token,
                new_password=request.new_password,
            )
        return empty_pb2.Empty()

    async def VerifyEmail(
        self, request: auth_pb2.VerifyEmailRequest, context: ServicerContext
    ) -> auth_pb2.VerifiedEmail:
        async with self.sessions() as session:
            email, address_changed = await email_verifications_service.verify_email(
                session=session, token=request.token, admin_emails=self.admin_emails
            )
        return auth_pb2.VerifiedEmail(email=email, address_changed=address_changed)

    # The caller's own resources: need the principal the gateway signed.

    async def ResendEmailVerification(
        self, request: auth_pb2.ResendEmailVerificationRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self._as_caller(context, session_only=True) as (session, caller):
            await email_verifications_service.resend(
                session=session,
                user_id=caller.user.id,
                terms=self.email_verification_links,
            )
        return empty_pb2.Empty()

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: ServicerContext
    ) -> auth_pb2.User:
        async with self._as_visible_user(context, request.user_id) as (_, user):
            return _user_message(user)

    async def UpdateUser(
        self, request: auth_pb2.UpdateUserRequest, context: ServicerContext
    ) -> auth_pb2.User:
        async with self._as_caller(context, session_only=True) as (session, caller):
            user = await users_service.update(
                session=session,
                passwords=self.passwords,
                revoked=self.tokens.revoked,
                notices=self.signup_notices,
                verification=self.email_verification_links,
                caller=caller,
                user_id=request.user_id,
                name=request.name if request.HasField("name") else None,
                email=request.email if request.HasField("email") else None,
                password=request.password if request.HasField("password") else None,
                current_password=(
                    request.current_password if request.HasField("current_password") else None
                ),
            )
        return _user_message(user)

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        limit, offset = page_bounds(request.page, default=DEFAULT_PAGE_LIMIT, most=MAX_PAGE_LIMIT)
        async with self._as_caller(context, session_only=True) as (session, caller):
            users, total = await users_service.list_accounts(
                session=session, caller=caller, query=request.query, limit=limit, offset=offset
            )
        return auth_pb2.ListUsersResponse(
            users=[_user_message(user) for user in users], total=total, limit=limit, offset=offset
        )

    async def SetAccountStatus(
        self, request: auth_pb2.SetAccountStatusRequest, context: ServicerContext
    ) -> auth_pb2.User:
        async with self._as_caller(context, session_only=True) as (session, caller):
            user = await users_service.set_status(
                session=session,
                revoked=self.tokens.revoked,
                caller=caller,
                user_id=request.user_id,
                active=request.active if request.HasField("active") else None,
                admin=request.admin if request.HasField("admin") else None,
            )
        return _user_message(user)

    async def DeleteAccount(
        self, request: auth_pb2.DeleteAccountRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self._as_caller(context, session_only=True) as (session, caller):
            await users_service.delete_account(
                session=session,
                passwords=self.passwords,
                revoked=self.tokens.revoked,
                caller=caller,
                current_password=request.current_password,
            )
        return empty_pb2.Empty()

    async def GetSettings(
        self, request: auth_pb2.GetSettingsRequest, context: ServicerContext
    ) -> auth_pb2.UserSettings:
        async with self._as_visible_user(context, request.user_id) as (session, user):
            settings = await preferences_service.get(session=session, user_id=user.id)
        return _settings_message(settings)

    async def UpdateSettings(
        self, request: auth_pb2.UpdateSettingsRequest, context: ServicerContext
    ) -> auth_pb2.UserSettings:
        async with self._as_visible_user(context, request.user_id, session_only=True) as (
            session,
            user,
        ):
            settings = await preferences_service.update(
                session=session,
                user_id=user.id,
                theme=request.theme if request.HasField("theme") else None,
                notifications_enabled=(
                    request.notifications_enabled
                    if request.HasField("notifications_enabled")
                    else None
                ),
            )
        return _settings_message(settings)

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: ServicerContext
    ) -> auth_pb2.CreatedApiKey:
        async with self._as_caller(context, session_only=True) as (session, caller):
            key, secret = await api_keys_service.create(
                session=session,
                user_id=caller.user.id,
                name=request.name,
                scopes=request.scopes,
                expires_in_days=(
                    request.expires_in_days if request.HasField("expires_in_days") else None
                ),
            )
        return auth_pb2.CreatedApiKey(key=_api_key_message(key), secret=secret)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        async with self._as_caller(context, session_only=True) as (session, caller):
            keys = await api_keys_service.list_for_user(session=session, user_id=caller.user.id)
        return auth_pb2.ListApiKeysResponse(keys=[_api_key_message(key) for key in keys])

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        async with self._as_caller(context, session_only=True) as (session, caller):
            await api_keys_service.revoke(session=session, caller=caller, key_id=request.key_id)
        return empty_pb2.Empty()

    # Two-factor authentication (ADR 0034): signed-in sessions only.

    async def StartTwoFactorEnrollment(
        self, request: auth_pb2.StartTwoFactorEnrollmentRequest, context: ServicerContext
    ) -> auth_pb2.TwoFactorEnrollment:
        async with self._as_caller(context, session_only=True) as (session, caller):
            await self._confirm_password(caller, request.current_password, "enrol an app")
            enrollment = await two_factor_service.start_enrollment(
                session=session, terms=self.two_factor, user=caller.user, now=utcnow()
            )
        return auth_pb2.TwoFactorEnrollment(
            secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri
        )

    async def ConfirmTwoFactorEnrollment(
        self, request: auth_pb2.ConfirmTwoFactorEnrollmentRequest, context: ServicerContext
    ) -> auth_pb2.RecoveryCodes:
        return await self._recovery_codes(
            context, two_factor_service.confirm_enrollment, code=request.code
        )

    async def RegenerateRecoveryCodes(
        self, request: auth_pb2.RegenerateRecoveryCodesRequest, context: ServicerContext
    ) -> auth_pb2.RecoveryCodes:
        return await self._recovery_codes(
            context,
            two_factor_service.regenerate_recovery_codes,
            code=request.code,
            current_password=request.current_password,
        )

    async def DisableTwoFactor(
        self, request: auth_pb2.DisableTwoFactorRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        """The owner with a code; an admin, for another account, without one."""
        async with self._as_caller(context, session_only=True) as (session, caller):
            await self._confirm_password(
                caller, request.current_password, "turn two-factor authentication off"
            )
            user = await users_service.get_visible(
                session=session, caller=caller, user_id=request.user_id
            )
            own = user.id == caller.user.id
            if own and not request.code:
                raise InvalidArgument(
                    "code is required: a code from the authenticator app or a recovery code"
                )
            await two_factor_service.disable(
                session=session,
                terms=self.two_factor,
                user=user,
                code=request.code if own else None,
                method=outbox.CHANGED_IN_SETTINGS if own else outbox.CHANGED_BY_ADMINISTRATOR,
                now=utcnow(),
                # An admin whose rights need the factor loses them with it, at once, as a
                # demotion does (ADR 0032): its sessions' tokens still say admin.
                end_sessions=(
                    self.tokens.revoked
                    if user.is_admin and self.tokens.admins.require_two_factor
                    else None
                ),
            )
        return empty_pb2.Empty()

    # The caller's sessions (ADR 0035): signed-in sessions only.

    async def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: ServicerContext
    ) -> auth_pb2.ListSessionsResponse:
        async with self._as_caller(context, session_only=True) as (session, caller):
            live = await sessions_service.live_sessions(
                session=session, user_id=caller.user.id, now=utcnow()
            )
        return auth_pb2.ListSessionsResponse(
            sessions=[_session_message(found, current=caller.session_id) for found in live]
        )

    async def EndSession(
        self, request: auth_pb2.EndSessionRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        try:
            session_id = uuid.UUID(request.session_id)
        except ValueError as exc:
            raise NotFound("no such session") from exc
        async with self._as_caller(context, session_only=True) as (session, caller):
            await sessions_service.end_one(
                session=session,
                revoked=self.tokens.revoked,
                user_id=caller.user.id,
                session_id=session_id,
                now=utcnow(),
            )
            await session.commit()
        return empty_pb2.Empty()

    async def EndOtherSessions(
        self, request: auth_pb2.EndOtherSessionsRequest, context: ServicerContext
    ) -> auth_pb2.EndedSessions:
        async with self._as_caller(context, session_only=True) as (session, caller):
            ended = await sessions_service.end_others(
                session=session,
                revoked=self.tokens.revoked,
                user_id=caller.user.id,
                keep={uuid.UUID(caller.session_id)} if caller.session_id else set(),
                now=utcnow(),
            )
            await session.commit()
        return auth_pb2.EndedSessions(ended=ended)

    async def _recovery_codes(
        self,
        context: ServicerContext,
        make: two_factor_service.RecoveryCodesMaker,
        *,
        code: str,
        current_password: str | None = None,
    ) -> auth_pb2.RecoveryCodes:
        """The caller's new recovery codes, from `make` given a code from the app (and the
        password first, when one is asked for)."""
        async with self._as_caller(context, session_only=True) as (session, caller):
            if current_password is not None:
                await self._confirm_password(caller, current_password, "make recovery codes")
            codes = await make(
                session=session, terms=self.two_factor, user=caller.user, code=code, now=utcnow()
            )
        return auth_pb2.RecoveryCodes(codes=codes)

    async def _confirm_password(self, caller: Caller, current_password: str, to: str) -> None:
        await users_service.confirm_password(
            passwords=self.passwords, caller=caller, current_password=current_password, to=to
        )

    @asynccontextmanager
    async def _as_caller(
        self, context: ServicerContext, *, session_only: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, Caller]]:
        """A session and the caller the gateway signed, loaded through it.

        ``session_only``: the account and its keys are managed from a signed-in session only
        (ADR 0026). The gateway refuses API keys on those routes already; refusing them here
        too keeps a leaked key from minting successors, changing the password or deleting
        the account should a caller ever reach this service some other way."""
        principal = caller_principal(context, secret=self.service_token_secret)
        if session_only and principal.auth_method != AUTH_METHOD_JWT:
            raise PermissionDenied(
                "an API key cannot do this: managing the account and its API keys needs a"
                " signed-in session",
                code="session_required",
            )
        async with self.sessions() as session:
            yield (
                session,
                await users_service.get_caller(
                    session=session, principal=principal, admins=self.tokens.admins
                ),
            )

    @asynccontextmanager
    async def _as_visible_user(
        self, context: ServicerContext, user_id: str, *, session_only: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, User]]:
        """A session and the account `user_id` names, if the caller may see it (its own, or
        any for an admin): what the profile and settings RPCs all start from."""
        async with self._as_caller(context, session_only=session_only) as (session, caller):
            yield (
                session,
                await users_service.get_visible(session=session, caller=caller, user_id=user_id),
            )


def _user_message(user: User) -> auth_pb2.User:
    message = auth_pb2.User(
        id=str(user.id),
        email=user.email,
        name=user.name,
        is_admin=user.is_admin,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        two_factor_enabled=user.two_factor_enabled_at is not None,
        created_at=timestamp(user.created_at),
        updated_at=timestamp(user.updated_at),
    )
    pending = email_verifications_service.pending_change(user, utcnow())
    if pending is not None:
        message.pending_email, expires_at = pending
        message.pending_email_expires_at.CopyFrom(timestamp(expires_at))
    return message


def _session_message(found: sessions_service.LiveSession, *, current: str) -> auth_pb2.Session:
    message = auth_pb2.Session(
        id=str(found.id),
        last_active_at=timestamp(found.last_active_at),
        expires_at=timestamp(found.expires_at),
        client_ip=found.client_ip,
        user_agent=found.user_agent,
        second_factor=found.second_factor,
        current=str(found.id) == current,
    )
    if found.started_at is not None:
        message.started_at.CopyFrom(timestamp(found.started_at))
    return message


def _token_pair_message(pair: tokens_service.TokenPair) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=pair.access.token,
        refresh_token=pair.refresh_token,
        token_type=BEARER,
        expires_in=pair.access.expires_in,
    )


def _settings_message(settings: UserSettings) -> auth_pb2.UserSettings:
    return auth_pb2.UserSettings(
        user_id=str(settings.user_id),
        theme=settings.theme,
        notifications_enabled=settings.notifications_enabled,
        updated_at=timestamp(settings.updated_at),
    )


def _api_key_message(key: ApiKey) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(
        id=str(key.id),
        name=key.name,
        prefix=key.prefix,
        created_at=timestamp(key.created_at),
        last_used_at=timestamp(key.last_used_at),
        revoked_at=timestamp(key.revoked_at),
        scopes=key.scopes,
        expires_at=timestamp(key.expires_at),
    )
