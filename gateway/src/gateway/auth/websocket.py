"""Who is on the other end of a WebSocket, checked as HTTP routes check it, and checked again
while the stream lives.

A WebSocket route takes no HTTP dependencies, so each stream authenticates itself here. The
access token comes in the `Authorization: Bearer` header or, where a client cannot set
headers (browsers), as the first message `{"token": "..."}`; never in the URL, where it
would end up in access logs. An API key comes in `X-API-Key` and needs the route's scope.
A refusal is an ApiError, as on HTTP routes; `close_code` turns its status into the close
code (4000 + the HTTP status where one fits: 4401 bad or missing credentials, 4403 an API key
without the scope; 1013 the auth service or Redis away).
"""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from fastapi import WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from gateway.auth.dependencies import Authorisation, current_principal, optional_access_token
from gateway.auth.tokens import MAX_TOKEN_LENGTH
from gateway.clients import ServiceClients
from gateway.errors import ApiError
from gateway.upstream import Upstream
from objectvision.v1 import auth_pb2, common_pb2
from objectvision_common.revocation import revocation_keys

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_IDLE = 4408
CLOSE_INVALID = 4422
CLOSE_TOO_MANY = 4429
# How long a client may take to send its token message.
TOKEN_MESSAGE_TIMEOUT_SECONDS = 10.0
# A token message is `{"token": "<at most MAX_TOKEN_LENGTH characters>"}`: anything much
# longer is refused before it is parsed (the server takes frames as large as an upload, for
# live detection, and JSON of that size from an unknown caller is CPU and memory spent).
MAX_TOKEN_MESSAGE_CHARS = MAX_TOKEN_LENGTH + 64
# Close reasons are at most 123 bytes.
MAX_CLOSE_REASON = 120

# The close that ends a stream with an error of each HTTP status; the rest are 1011.
_CLOSE_FOR_HTTP_STATUS = {
    400: CLOSE_INVALID,
    401: CLOSE_UNAUTHENTICATED,
    403: CLOSE_FORBIDDEN,
    404: CLOSE_NOT_FOUND,
    408: CLOSE_IDLE,
    413: CLOSE_MESSAGE_TOO_BIG,
    415: CLOSE_INVALID,
    422: CLOSE_INVALID,
    429: CLOSE_TOO_MANY,
    503: CLOSE_TRY_AGAIN_LATER,
    504: CLOSE_TRY_AGAIN_LATER,
}

REFUSED_CREDENTIALS = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
)


@dataclass(frozen=True)
class StreamCredential:
    """What authenticated a stream, kept to check it again while the stream lives."""

    access_token: str | None
    api_key: str | None


@dataclass(frozen=True)
class StreamCaller:
    """An accepted, authenticated and authorised stream's caller."""

    principal: common_pb2.Principal
    credential: StreamCredential
    upstream: Upstream


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry."""
    return text.encode()[:MAX_CLOSE_REASON].decode(errors="ignore")


def close_code(error: ApiError) -> int:
    """The close code that ends a stream with `error`."""
    return _CLOSE_FOR_HTTP_STATUS.get(error.status_code, CLOSE_INTERNAL_ERROR)


def error_message(error: ApiError) -> dict[str, Any]:
    """`error` as a stream's last message: its whole explanation, which a close reason (123
    bytes) cannot hold."""
    message: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
    if error.details:
        message["details"] = [detail.model_dump(mode="json") for detail in error.details]
    if "Retry-After" in error.headers:
        message["retry_after"] = int(error.headers["Retry-After"])
    return message


async def end_stream(websocket: WebSocket, error: ApiError, *, explain: bool) -> None:
    """Close the stream with `error`'s code and reason, first sending it as an `error`
    message where the stream's protocol has one (`explain`)."""
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        if explain:
            await websocket.send_json(error_message(error))
        await websocket.close(close_code(error), close_reason(error.message))


def _bearer_token(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _token_message(websocket: WebSocket) -> str | None:
    """The token from the client's first message, or None if it sends something else."""
    try:
        received = await asyncio.wait_for(
            websocket.receive(), timeout=TOKEN_MESSAGE_TIMEOUT_SECONDS
        )
    except (TimeoutError, RuntimeError, WebSocketDisconnect):
        return None
    text = received.get("text")
    data = received.get("bytes")
    if text is None and isinstance(data, bytes) and len(data) <= MAX_TOKEN_MESSAGE_CHARS:
        text = data.decode("utf-8", "replace")
    if not isinstance(text, str) or len(text) > MAX_TOKEN_MESSAGE_CHARS:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    token = message.get("token") if isinstance(message, dict) else None
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH:
        return token
    return None


async def _authenticate(
    websocket: WebSocket, upstream: Upstream, clients: ServiceClients
) -> tuple[common_pb2.Principal, StreamCredential] | None:
    """The caller, by the same checks as HTTP routes (signature, expiry, revocation), and
    the credential it used."""
    token = _bearer_token(websocket)
    api_key = websocket.headers.get("x-api-key")
    if token is None and not api_key:
        token = await _token_message(websocket)
        if token is None:
            return None
    access = await optional_access_token(token, websocket.app.state.jwks, clients, upstream)
    principal = await current_principal(access, api_key, upstream)
    used = StreamCredential(access_token=token, api_key=None if access else api_key)
    return principal, used


def _try_again_later() -> ApiError:
    return ApiError(503, "unavailable", "try again later")


async def accept_caller(
    websocket: WebSocket,
    clients: ServiceClients,
    *,
    authorisation: Authorisation,
    deadline_seconds: float,
) -> StreamCaller:
    """Accept the WebSocket and authenticate and authorise its caller; ApiError (401, 403,
    or 503 with the auth service or Redis away) when it may not stream."""
    await websocket.accept()
    upstream = Upstream(clients=clients, deadline_seconds=deadline_seconds)
    try:
        authenticated = await _authenticate(websocket, upstream, clients)
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise
        raise _try_again_later() from None
    except grpc.aio.AioRpcError as exc:
        # The auth service's verdict on an API key, or its fallback token check.
        if exc.code() in REFUSED_CREDENTIALS:
            raise ApiError.unauthenticated("authentication failed") from None
        raise _try_again_later() from None
    if authenticated is None:
        raise ApiError.unauthenticated("authentication required")
    principal, credential = authenticated
    authorisation.check(principal)
    return StreamCaller(principal=principal, credential=credential, upstream=upstream)


async def _revoked(credential: StreamCredential, upstream: Upstream) -> bool:
    """Whether the stream's credential has been revoked since it opened. An access token's
    revocation entries are read (it was verified at the start, so its claims are read
    without checking the signature again, nor its expiry); an API key is authenticated
    again, which also refuses a suspended account. Redis or auth-service briefly away is
    not a revocation: the next check decides."""
    if credential.access_token is not None:
        claims = jwt.decode(credential.access_token, options={"verify_signature": False})
        keys = revocation_keys(jti=str(claims["jti"]), sid=str(claims["sid"]))
        try:
            return bool(await upstream.clients.redis.exists(*keys))
        except RedisError:
            return False
    request = auth_pb2.AuthenticateApiKeyRequest(api_key=credential.api_key or "")
    try:
        await upstream.call(upstream.auth.AuthenticateApiKey, request)
    except grpc.aio.AioRpcError as exc:
        return exc.code() in REFUSED_CREDENTIALS
    return False


async def until_revoked(caller: StreamCaller, *, every: float) -> tuple[int, str]:
    """Check the caller's credential every `every` seconds; the close to end with once it is
    revoked (a logout, a new password, a revoked key, a suspended account). An access token
    merely expiring does not end a stream: it was allowed when it opened."""
    while True:
        await asyncio.sleep(every)
        if await _revoked(caller.credential, caller.upstream):
            return CLOSE_UNAUTHENTICATED, "the credential was revoked"
