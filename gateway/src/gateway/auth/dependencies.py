"""Authentication, authorisation and throttling as dependencies, so a route cannot forget
any of them.

A route that takes `CurrentPrincipal` is reachable only with a live access token or API key.
What an API key may do beyond that is the route's `Authorisation` (ADR 0026), declared in its
signature by the Upstream alias it takes: `DetectUpstream`, `ResultsReadUpstream`,
`ResultsWriteUpstream` and `WebhooksUpstream` need the key to carry that scope,
`AccountUpstream` refuses keys outright (the account and its keys are managed from a
signed-in session only), `UserUpstream` lets any key through (who am I). A Bearer session
passes them all. Upstream calls carry the caller's signed Principal.
"""

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import APIRouter, Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import (
    AUTH_METHOD_JWT,
    InvalidTokenError,
    decode_access_token,
    principal_from_claims,
    token_key_id,
)
from gateway.clients import ServiceClients
from gateway.config import GatewaySettings, RateLimitRule
from gateway.dependencies import (
    ClientIp,
    ClientsDep,
    PublicUpstream,
    RateLimiterDep,
    SettingsDep,
)
from gateway.errors import SERVER_ERRORS, ApiError, error_responses
from gateway.ratelimit import (
    PolicyState,
    RateLimiter,
    client_network,
    limit_key,
    rate_limit_fields,
)
from gateway.schemas.auth import ForgotPasswordIn, LoginCredentials, LoginForm, LoginJson
from gateway.upstream import Upstream
from objectvision.v1 import auth_pb2, common_pb2
from objectvision_common.api_keys import Scope
from objectvision_common.emails import InvalidEmail, account_key
from objectvision_common.identity import principal_metadata
from objectvision_common.revocation import revocation_keys

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOGIN_PATH = "/api/v1/auth/login"
# Real keys are ~60 characters; anything far longer is not worth a round trip.
MAX_API_KEY_LENGTH = 256
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# Security schemes: they read the headers and document them in OpenAPI. auto_error=False so
# that a missing credential reaches our own 401 in the standard error shape.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=LOGIN_PATH, auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True)
class AccessToken:
    """A verified access token and the caller it names."""

    token: str
    principal: common_pb2.Principal


async def get_jwks(connection: HTTPConnection) -> JwksCache:
    jwks: JwksCache = connection.app.state.jwks
    return jwks


JwksDep = Annotated[JwksCache, Depends(get_jwks)]


async def optional_access_token(
    token: Annotated[str | None, Depends(bearer_scheme)],
    jwks: JwksDep,
    clients: ClientsDep,
    upstream: PublicUpstream,
) -> AccessToken | None:
    """Verify a Bearer token locally (JWKS) and against the revocation list in Redis: the
    token itself and its session (refresh-token family) must both be unrevoked, so a logout
    or a detected refresh-token reuse ends every access token of the session at once.

    Without Redis the auth service's VerifyToken decides instead (it fails closed), so a
    Redis outage never lets a revoked token through.
    """
    if token is None:
        return None
    try:
        claims = decode_access_token(token, await jwks.key_set_for(token_key_id(token)))
    except InvalidTokenError as exc:
        raise ApiError.unauthenticated(str(exc), code="invalid_token") from exc
    try:
        revoked = await clients.redis.exists(
            *revocation_keys(jti=claims.token_id, sid=claims.session_id)
        )
    except RedisError:
        logger.warning("revocation list unreachable; asking the auth service", exc_info=True)
        principal = await upstream.call(
            upstream.auth.VerifyToken, auth_pb2.VerifyTokenRequest(access_token=token)
        )
        return AccessToken(token=token, principal=principal)
    if revoked:
        raise ApiError.unauthenticated("the access token has been revoked", code="invalid_token")
    return AccessToken(token=token, principal=principal_from_claims(claims))


OptionalAccessToken = Annotated[AccessToken | None, Depends(optional_access_token)]


async def current_access_token(access: OptionalAccessToken) -> AccessToken:
    """For routes that act on the session itself (logout): an API key will not do."""
    if access is None:
        raise ApiError.unauthenticated("a Bearer access token is required")
    return access


CurrentAccessToken = Annotated[AccessToken, Depends(current_access_token)]


async def current_principal(
    access: OptionalAccessToken,
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    upstream: PublicUpstream,
) -> common_pb2.Principal:
    """The caller, by Bearer access token or else by X-API-Key."""
    if access is not None:
        return access.principal
    if api_key:
        if len(api_key) > MAX_API_KEY_LENGTH:
            raise ApiError.unauthenticated("the API key is invalid or revoked")
        return await upstream.call(
            upstream.auth.AuthenticateApiKey, auth_pb2.AuthenticateApiKeyRequest(api_key=api_key)
        )
    raise ApiError.unauthenticated(
        "authentication required: send a Bearer access token or an X-API-Key header"
    )


CurrentPrincipal = Annotated[common_pb2.Principal, Depends(current_principal)]


def _signed_upstream(
    principal: common_pb2.Principal, clients: ServiceClients, settings: GatewaySettings
) -> Upstream:
    return Upstream(
        clients=clients,
        deadline_seconds=settings.grpc_deadline_seconds,
        metadata=principal_metadata(principal, secret=settings.service_token_secret),
    )


@dataclass(frozen=True)
class Authorisation:
    """What an authenticated caller needs to reach a route: an API key with `scope` (and
    `also_scope`, where a route both reads results and detects: a history rerun shows what
    the filters keep), or a signed-in session (`session_only`); with neither, any live
    credential will do. A Bearer session may do everything, so it passes every one.

    An instance is itself the dependency (FastAPI calls it with the caller), reached through
    the Upstream alias a route takes; from there `AuthorisedRoute` documents the 403 and a
    test checks that every authenticated route declares one.
    """

    scope: Scope | None = None
    session_only: bool = False
    also_scope: Scope | None = None

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """Every scope an API key needs here, in the order they are named."""
        return tuple(scope for scope in (self.scope, self.also_scope) if scope is not None)

    async def __call__(self, principal: CurrentPrincipal) -> common_pb2.Principal:
        self.check(principal)
        return principal

    def check(self, principal: common_pb2.Principal) -> None:
        """Refuse `principal` with 403 unless this authorisation lets it through."""
        if principal.auth_method == AUTH_METHOD_JWT:
            return
        if self.session_only:
            raise ApiError(
                403,
                "session_required",
                "an API key cannot do this: managing the account and its API keys needs a "
                "signed-in session (Authorization: Bearer)",
            )
        missing = [scope for scope in self.scopes if scope not in principal.scopes]
        if missing:
            named = " and ".join(f"'{scope}'" for scope in missing)
            plural = "s" if len(missing) > 1 else ""
            raise ApiError(
                403,
                "insufficient_scope",
                f"this API key lacks the {named} scope{plural} this needs; create a key with"
                f" {'those scopes' if plural else 'that scope'} from a signed-in session",
            )

    def refusal(self) -> str | None:
        """Why an API key may be refused here, for the route's 403 in the OpenAPI document;
        None when every key passes."""
        if self.session_only:
            return "An API key is refused: this needs a signed-in session (`session_required`)."
        if not self.scopes:
            return None
        needs = (
            f"An API key needs the {' and '.join(f'`{scope}`' for scope in self.scopes)}"
            f" scope{'s' if len(self.scopes) > 1 else ''} (`insufficient_scope`)."
        )
        if Scope.DETECT in self.scopes:
            return (
                f"{needs} Where the deployment requires verified email addresses"
                " (REQUIRE_VERIFIED_EMAIL), an account without one is refused"
                " (`email_not_verified`)."
            )
        return needs


ANY_CREDENTIAL = Authorisation()
SESSION_ONLY = Authorisation(session_only=True)


def authorised_upstream(authorisation: Authorisation) -> Callable[..., Awaitable[Upstream]]:
    """The dependency that gives an Upstream to the callers `authorisation` lets through;
    its calls carry the caller's signed Principal."""

    async def upstream(
        principal: Annotated[common_pb2.Principal, Depends(authorisation)],
        clients: ClientsDep,
        settings: SettingsDep,
    ) -> Upstream:
        return _signed_upstream(principal, clients, settings)

    return upstream


async def session_upstream(
    access: CurrentAccessToken, clients: ClientsDep, settings: SettingsDep
) -> Upstream:
    """For routes that act on the Bearer session itself (logout): an API key is a 401."""
    return _signed_upstream(access.principal, clients, settings)


SessionUpstream = Annotated[Upstream, Depends(session_upstream)]
# Any live credential: the caller's own profile and settings, read (a script's "who am I").
UserUpstream = Annotated[Upstream, Depends(authorised_upstream(ANY_CREDENTIAL))]
# The account and its keys: a signed-in session only, so a leaked key cannot mint successors
# that outlive its revocation, nor change the password or delete the account.
AccountUpstream = Annotated[Upstream, Depends(authorised_upstream(SESSION_ONLY))]
DetectUpstream = Annotated[
    Upstream, Depends(authorised_upstream(Authorisation(scope=Scope.DETECT)))
]
# Detection over what was stored: a history rerun says what the filters keep (how many, their
# file names, a replayed job's counts), so a key needs results:read as well as detect.
RerunUpstream = Annotated[
    Upstream,
    Depends(authorised_upstream(Authorisation(scope=Scope.DETECT, also_scope=Scope.RESULTS_READ))),
]
ResultsReadUpstream = Annotated[
    Upstream, Depends(authorised_upstream(Authorisation(scope=Scope.RESULTS_READ)))
]
ResultsWriteUpstream = Annotated[
    Upstream, Depends(authorised_upstream(Authorisation(scope=Scope.RESULTS_WRITE)))
]
WebhooksUpstream = Annotated[
    Upstream, Depends(authorised_upstream(Authorisation(scope=Scope.WEBHOOKS)))
]
ResultsShareUpstream = Annotated[
    Upstream, Depends(authorised_upstream(Authorisation(scope=Scope.RESULTS_SHARE)))
]


def dependency_calls(dependant: Dependant) -> Iterator[Any]:
    """Every dependency a route (or a dependency) runs, however deep, as FastAPI calls it."""
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from dependency_calls(dependency)


def route_authorisation(dependant: Dependant) -> Authorisation | None:
    """The Authorisation a route's dependencies declare; None for a route that declares none
    (a public one, or one that forgot). Two different ones on one route are a mistake in the
    route, refused when it is built."""
    declared = {call for call in dependency_calls(dependant) if isinstance(call, Authorisation)}
    if len(declared) > 1:
        raise TypeError(f"{dependant.call} declares more than one authorisation: {declared}")
    return next(iter(declared), None)


class AuthorisedRoute(APIRoute):
    """A route whose OpenAPI entry documents the 403 its Authorisation answers an API key,
    read from its signature, so the document cannot drift from what the route enforces."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        authorisation = route_authorisation(get_dependant(path=path, call=endpoint))
        refusal = authorisation.refusal() if authorisation is not None else None
        if refusal is not None:
            responses = {**error_responses(403), **(options.get("responses") or {})}
            forbidden = dict(responses[403])
            forbidden["description"] = f"{forbidden['description']}. {refusal}"
            options["responses"] = {**responses, 403: forbidden}
        super().__init__(path, endpoint, **options)


def signed_in_router(prefix: str, tag: str) -> APIRouter:
    """The router of a resource only a signed-in caller reaches (each route takes one of the
    authorised Upstream aliases above): every route documents the 401 that authentication
    answers and the server errors, declared here once rather than in each router, and the 403
    of its Authorisation (`AuthorisedRoute`)."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        responses=error_responses(401, *SERVER_ERRORS),
        route_class=AuthorisedRoute,
    )


def _body_validation_error(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
    )


async def login_credentials(request: Request) -> LoginCredentials:
    """The credentials of a login, from JSON `{email, password}` or the OAuth2 password form."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        try:
            parsed = LoginJson.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _body_validation_error(exc) from exc
        return LoginCredentials(
            email=parsed.email,
            password=parsed.password,
            second_factor_code=parsed.second_factor_code,
        )
    if media_type in _FORM_TYPES:
        async with request.form(max_files=0, max_fields=16) as form:
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
        try:
            form_data = LoginForm.model_validate(fields)
        except ValidationError as exc:
            raise _body_validation_error(exc) from exc
        return LoginCredentials(
            email=form_data.username,
            password=form_data.password,
            second_factor_code=form_data.second_factor_code,
        )
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the credentials as application/json or application/x-www-form-urlencoded",
    )


def _account(email: str) -> str | None:
    """The account a login names: its key from objectvision_common.emails, the very function
    the auth service finds the account with, so every spelling that could open an account
    counts against that account. Text that is no address names no account (the auth service
    refuses it without a lookup); only the per-network limit applies to it."""
    try:
        return account_key(email)
    except InvalidEmail:
        return None


def _report_limits(request: Request, response: Response, states: list[PolicyState]) -> None:
    """Put the RateLimit fields on this answer: on the route's own response, and in the
    request's state, where the error handlers find them when the route answers an error
    (a wrong password is still an attempt that counted)."""
    fields = rate_limit_fields(states)
    response.headers.update(fields)
    request.state.rate_limit_fields = fields


@dataclass(frozen=True)
class Attempts:
    """Counts this request's attempts against rate limits and puts the RateLimit fields on
    its answer. The limiter, and the request and response the fields go on, come as this one
    dependency, so each throttle below names only its own limits."""

    limiter: RateLimiter
    request: Request
    response: Response

    async def take(
        self,
        limits: Sequence[tuple[str, str, RateLimitRule]],
        *,
        peeked: Sequence[PolicyState] = (),
    ) -> None:
        """Count one attempt against each limit (name, key, rule) in turn; the first one used
        up answers 429 with the fields of the limits counted so far, and the rest are not
        counted. `peeked` are limits read without counting (login's failures per account),
        reported first."""
        states = list(peeked)
        for name, key, rule in limits:
            decision = await self.limiter.hit(key, rule)
            states.append(PolicyState(name, rule, decision))
            if not decision.allowed:
                raise ApiError.rate_limited(
                    decision.retry_after_seconds, headers=rate_limit_fields(states)
                )
        _report_limits(self.request, self.response, states)

    async def take_one(self, name: str, subject: str, rule: RateLimitRule) -> None:
        """`take` for a route with one limit, `name`, counted per `subject` (a network, an
        account)."""
        await self.take([(name, limit_key(name, subject), rule)])


async def _attempts(limiter: RateLimiterDep, request: Request, response: Response) -> Attempts:
    return Attempts(limiter=limiter, request=request, response=response)


AttemptsDep = Annotated[Attempts, Depends(_attempts)]


async def throttled_login_credentials(
    credentials: Annotated[LoginCredentials, Depends(login_credentials)],
    ip: ClientIp,
    settings: SettingsDep,
    attempts: AttemptsDep,
) -> LoginCredentials:
    """Login credentials, once the attempt is within every login limit: RATE_LIMIT_LOGIN for
    this network and account, RATE_LIMIT_LOGIN_IP for this network, RATE_LIMIT_LOGIN_ACCOUNT
    failures for this account from anywhere."""
    network = client_network(ip)
    account = _account(credentials.email)
    rules: list[tuple[str, str, RateLimitRule]] = []
    peeked: list[PolicyState] = []
    if account is not None:
        rule = settings.rate_limit_login_account
        failures = await attempts.limiter.peek(limit_key("login-account", account), rule)
        peeked.append(PolicyState("login-account", rule, failures))
        if not failures.allowed:
            raise ApiError.rate_limited(
                failures.retry_after_seconds, headers=rate_limit_fields(peeked)
            )
        rules.append(("login", limit_key("login", network, account), settings.rate_limit_login))
    rules.append(("login-ip", limit_key("login-ip", network), settings.rate_limit_login_ip))
    await attempts.take(rules, peeked=peeked)
    return credentials


ThrottledLoginCredentials = Annotated[LoginCredentials, Depends(throttled_login_credentials)]


@dataclass(frozen=True)
class LoginFailures:
    """Counts a refused password against its account (RATE_LIMIT_LOGIN_ACCOUNT)."""

    limiter: RateLimiter
    rule: RateLimitRule

    async def record(self, email: str) -> None:
        account = _account(email)
        if account is not None:
            await self.limiter.record(limit_key("login-account", account), self.rule)


async def login_failures(limiter: RateLimiterDep, settings: SettingsDep) -> LoginFailures:
    return LoginFailures(limiter=limiter, rule=settings.rate_limit_login_account)


LoginFailuresDep = Annotated[LoginFailures, Depends(login_failures)]


@dataclass(frozen=True)
class PasswordConfirmations:
    """The signed-in caller's current password, given again to change the password or email
    or to delete the account. A session or API key in someone else's hands could otherwise
    guess it without end and take the account over; RATE_LIMIT_PASSWORD_CONFIRM wrong ones
    per account, after which every confirmation is 429 until the window moves on. Right ones
    never count, so the owner is never slowed down."""

    limiter: RateLimiter
    rule: RateLimitRule
    user_id: str
    request: Request
    response: Response

    async def confirm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Make `call`, an upstream call that checks the current password, once the account
        has guesses left; a PERMISSION_DENIED answer (a wrong password) counts one."""
        key = limit_key("password-confirm", self.user_id)
        state = PolicyState("password-confirm", self.rule, await self.limiter.peek(key, self.rule))
        if not state.decision.allowed:
            raise ApiError.rate_limited(
                state.decision.retry_after_seconds, headers=rate_limit_fields([state])
            )
        _report_limits(self.request, self.response, [state])
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                await self.limiter.record(key, self.rule)
            raise


async def password_confirmations(
    principal: CurrentPrincipal,
    limiter: RateLimiterDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> PasswordConfirmations:
    return PasswordConfirmations(
        limiter=limiter,
        rule=settings.rate_limit_password_confirm,
        user_id=principal.user_id,
        request=request,
        response=response,
    )


PasswordConfirmationsDep = Annotated[PasswordConfirmations, Depends(password_confirmations)]


async def throttle_signup(ip: ClientIp, settings: SettingsDep, attempts: AttemptsDep) -> None:
    """Refuse a sign-up once this IP has used RATE_LIMIT_SIGNUP."""
    await attempts.take_one("signup", client_network(ip), settings.rate_limit_signup)


async def throttled_forgot_password(
    body: ForgotPasswordIn, ip: ClientIp, settings: SettingsDep, attempts: AttemptsDep
) -> ForgotPasswordIn:
    """A reset-link request, once within RATE_LIMIT_FORGOT_PASSWORD for this network and
    RATE_LIMIT_FORGOT_PASSWORD_EMAIL for this address from anywhere. The address's limit
    counts every request for it, whether or not it has an account, so a 429 tells nothing
    about accounts; it keeps anyone from filling an owner's inbox with reset mail."""
    network = client_network(ip)
    limits = [
        (
            "forgot-password",
            limit_key("forgot-password", network),
            settings.rate_limit_forgot_password,
        )
    ]
    account = _account(body.email)
    if account is not None:
        limits.append(
            (
                "forgot-password-email",
                limit_key("forgot-password-email", account),
                settings.rate_limit_forgot_password_email,
            )
        )
    await attempts.take(limits)
    return body


ThrottledForgotPassword = Annotated[ForgotPasswordIn, Depends(throttled_forgot_password)]


async def throttle_shared_views(ip: ClientIp, settings: SettingsDep, attempts: AttemptsDep) -> None:
    """Refuse a shared detection's read once this network has used RATE_LIMIT_SHARED_VIEWS.
    Tokens cannot be guessed (256 random bits); this bounds what anonymous readers cost (an
    annotated image is drawn for each read)."""
    await attempts.take_one("shared-views", client_network(ip), settings.rate_limit_shared_views)


async def throttle_verify_email(ip: ClientIp, settings: SettingsDep, attempts: AttemptsDep) -> None:
    """Refuse an email verification once this network has used RATE_LIMIT_VERIFY_EMAIL.
    Tokens cannot be guessed (256 random bits); this bounds what a network can try."""
    await attempts.take_one("verify-email", client_network(ip), settings.rate_limit_verify_email)


async def throttled_resend_verification(
    principal: Annotated[common_pb2.Principal, Depends(SESSION_ONLY)],
    settings: SettingsDep,
    attempts: AttemptsDep,
) -> common_pb2.Principal:
    """The signed-in caller asking for a new verification link, once within
    RATE_LIMIT_RESEND_VERIFICATION for this account: a session cannot fill the inbox. It
    takes the caller through SESSION_ONLY, so an API key is refused (403) before it counts."""
    await attempts.take_one(
        "resend-verification", principal.user_id, settings.rate_limit_resend_verification
    )
    return principal


ThrottledResendVerification = Annotated[
    common_pb2.Principal, Depends(throttled_resend_verification)
]


async def throttle_reset_password(
    ip: ClientIp, settings: SettingsDep, attempts: AttemptsDep
) -> None:
    """Refuse a password reset once this network has used RATE_LIMIT_RESET_PASSWORD. Tokens
    cannot be guessed (256 random bits); this bounds the Argon2 hashes a network can ask
    for with links it holds."""
    await attempts.take_one(
        "reset-password", client_network(ip), settings.rate_limit_reset_password
    )
