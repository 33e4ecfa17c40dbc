"""Live progress of one job over a WebSocket, relayed from the notification service.

The access token comes in the `Authorization: Bearer` header or, where a client cannot set
headers (browsers), as the first message `{"token": "..."}`; never in the URL, where it
would end up in access logs. An API key needs the `results:read` scope. Close codes: 4401
bad or missing credentials, 4403 an API key without that scope, 4404 no such job for this
caller, 4429 the account already holds WS_MAX_STREAMS_PER_ACCOUNT streams on this replica,
1000 after the final event, 1011/1013 on server trouble. While the stream lives its
credential is checked again every WS_CREDENTIAL_RECHECK_SECONDS: a logout, a new password, a
revoked key or a suspended account closes it with 4401 (an access token merely expiring
does not: the stream was allowed when it opened).
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from google.protobuf import json_format
from google.protobuf.message import Message
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from gateway.auth.dependencies import Authorisation, current_principal, optional_access_token
from gateway.dependencies import ClientsDep, LiveStreamsDep, SettingsDep
from gateway.errors import ApiError
from gateway.live_streams import LiveStreams, TooManyStreams
from gateway.upstream import Upstream
from objectvision.v1 import auth_pb2, common_pb2, notification_pb2
from objectvision_common.api_keys import Scope
from objectvision_common.identity import principal_metadata
from objectvision_common.revocation import revocation_keys

logger = logging.getLogger(__name__)

router = APIRouter(tags=["jobs"])

CLOSE_NORMAL = 1000
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429
FINAL_EVENT_TYPES = frozenset({"job.completed", "job.failed", "job.cancelled"})
# How long a client may take to send its token message.
TOKEN_MESSAGE_TIMEOUT_SECONDS = 10.0
# The stream lives as long as the job; this only bounds a forgotten connection.
STREAM_DEADLINE_SECONDS = 24 * 3600.0
MAX_TOKEN_LENGTH = 8192
# A WebSocket route takes no HTTP dependencies: the stream checks its caller itself, with the
# same Authorisation the results routes declare.
STREAM_AUTHORISATION = Authorisation(scope=Scope.RESULTS_READ)
# Close reasons are at most 123 bytes.
_MAX_CLOSE_REASON = 120

_CLOSE_FOR_STATUS = {
    grpc.StatusCode.NOT_FOUND: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.PERMISSION_DENIED: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.INVALID_ARGUMENT: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.UNAUTHENTICATED: (CLOSE_UNAUTHENTICATED, "authentication failed"),
    grpc.StatusCode.UNAVAILABLE: (CLOSE_TRY_AGAIN_LATER, "try again later"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (CLOSE_TRY_AGAIN_LATER, "try again later"),
}

_REFUSED_CREDENTIALS = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
)


def _job_fields(job: notification_pb2.JobProgress | notification_pb2.JobFinished) -> dict[str, Any]:
    """What progress and the final event both report, under the same keys: the counts and
    the job's metadata (ADR 0045)."""
    return {
        "total": job.total,
        "processed": job.processed,
        "failed": job.failed,
        "metadata": dict(sorted(job.metadata.items())),
    }


def _as_dicts(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Counts as JSON objects, keyed as the contract spells the fields, zeros included."""
    return [
        json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for message in messages
    ]


def event_message(event: notification_pb2.Event) -> dict[str, Any]:
    """The JSON a client receives for one event."""
    message: dict[str, Any] = {
        "type": event.type,
        "event_id": event.id,
        "occurred_at": event.occurred_at.ToJsonString() if event.HasField("occurred_at") else None,
    }
    if event.HasField("job_progress"):
        progress = event.job_progress
        message.update(job_id=progress.job_id, **_job_fields(progress))
        # The run's pace and the finish it points to; null until the job has finished an
        # item since it (re)started (GET /detect/jobs/{id}'s fields of the same names).
        estimated = progress.HasField("estimated_completion_at")
        message.update(
            items_per_second=progress.items_per_second if estimated else None,
            estimated_completion_at=(
                progress.estimated_completion_at.ToJsonString() if estimated else None
            ),
        )
        if progress.HasField("counts"):
            # A counting video job's counts so far (every few seconds, not on every event).
            message.update(
                line_counts=_as_dicts(progress.counts.line_counts),
                zone_counts=_as_dicts(progress.counts.zone_counts),
            )
    elif event.HasField("job_finished"):
        finished = event.job_finished
        message.update(
            job_id=finished.job_id,
            status=finished.status,
            **_job_fields(finished),
            class_counts=dict(finished.class_counts),
            line_counts=_as_dicts(finished.line_counts),
            zone_counts=_as_dicts(finished.zone_counts),
            error=finished.error or None,
        )
    return message


def _bearer_token(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _token_message(websocket: WebSocket) -> str | None:
    """The token from the client's first message, or None if it sends something else."""
    try:
        message = await asyncio.wait_for(
            websocket.receive_json(), timeout=TOKEN_MESSAGE_TIMEOUT_SECONDS
        )
    except (TimeoutError, ValueError, KeyError, RuntimeError, WebSocketDisconnect):
        return None
    token = message.get("token") if isinstance(message, dict) else None
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH:
        return token
    return None


@dataclass(frozen=True)
class StreamCredential:
    """What authenticated a stream, kept to check it again while the stream lives."""

    access_token: str | None
    api_key: str | None


async def _authenticate(
    websocket: WebSocket, upstream: Upstream, clients: ClientsDep
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


async def _revoked(credential: StreamCredential, clients: ClientsDep, upstream: Upstream) -> bool:
    """Whether the stream's credential has been revoked since it opened. An access token's
    revocation entries are read (it was verified at the start, so its claims are read
    without checking the signature again, nor its expiry); an API key is authenticated
    again, which also refuses a suspended account. Redis or auth-service briefly away is
    not a revocation: the next check decides."""
    if credential.access_token is not None:
        claims = jwt.decode(credential.access_token, options={"verify_signature": False})
        keys = revocation_keys(jti=str(claims["jti"]), sid=str(claims["sid"]))
        try:
            return bool(await clients.redis.exists(*keys))
        except RedisError:
            return False
    request = auth_pb2.AuthenticateApiKeyRequest(api_key=credential.api_key or "")
    try:
        await upstream.call(upstream.auth.AuthenticateApiKey, request)
    except grpc.aio.AioRpcError as exc:
        return exc.code() in _REFUSED_CREDENTIALS
    return False


async def _until_revoked(
    credential: StreamCredential, clients: ClientsDep, upstream: Upstream, *, every: float
) -> tuple[int, str]:
    """Check the credential every `every` seconds; the close to end with once it is revoked."""
    while True:
        await asyncio.sleep(every)
        if await _revoked(credential, clients, upstream):
            return CLOSE_UNAUTHENTICATED, "the credential was revoked"


async def _relay(websocket: WebSocket, events: Any) -> tuple[int, str]:
    """Send each event until the final one; the close code to end with."""
    try:
        async for event in events:
            await websocket.send_json(event_message(event))
            if event.type in FINAL_EVENT_TYPES:
                return CLOSE_NORMAL, "job finished"
    except grpc.aio.AioRpcError as exc:
        code, reason = _CLOSE_FOR_STATUS.get(exc.code(), (CLOSE_INTERNAL_ERROR, "internal error"))
        if code == CLOSE_INTERNAL_ERROR:
            logger.warning("job progress stream failed", extra={"grpc_code": exc.code().name})
        return code, reason
    return CLOSE_NORMAL, "stream ended"


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.websocket("/api/v1/ws/jobs/{job_id}")
async def job_progress(
    websocket: WebSocket,
    job_id: str,
    clients: ClientsDep,
    settings: SettingsDep,
    streams: LiveStreamsDep,
) -> None:
    """Streams `{"type": "job.progress" | "job.completed" | "job.failed" | "job.cancelled",
    ...}` messages; the socket closes (1000) after the final one."""
    await websocket.accept()
    upstream = Upstream(clients=clients, deadline_seconds=settings.grpc_deadline_seconds)
    try:
        authenticated = await _authenticate(websocket, upstream, clients)
        if authenticated is not None:
            STREAM_AUTHORISATION.check(authenticated[0])
    except ApiError as exc:
        code = {401: CLOSE_UNAUTHENTICATED, 403: CLOSE_FORBIDDEN}.get(
            exc.status_code, CLOSE_TRY_AGAIN_LATER
        )
        await websocket.close(code, exc.message[:_MAX_CLOSE_REASON])
        return
    except grpc.aio.AioRpcError as exc:
        # The auth service's verdict on an API key, or its fallback token check.
        refused = exc.code() in _REFUSED_CREDENTIALS
        await websocket.close(
            CLOSE_UNAUTHENTICATED if refused else CLOSE_TRY_AGAIN_LATER,
            "authentication failed" if refused else "try again later",
        )
        return
    if authenticated is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "authentication required")
        return
    principal, credential = authenticated
    try:
        with streams.hold(principal.user_id):
            await _stream(websocket, job_id, principal, credential, upstream, settings, streams)
    except TooManyStreams:
        await websocket.close(
            CLOSE_TOO_MANY,
            f"this account already follows {streams.per_account} jobs live; close one first",
        )


async def _stream(
    websocket: WebSocket,
    job_id: str,
    principal: common_pb2.Principal,
    credential: StreamCredential,
    upstream: Upstream,
    settings: SettingsDep,
    streams: LiveStreams,
) -> None:
    """Relay the job's events until its final one, the client leaving, the credential
    being revoked, or trouble."""
    clients = upstream.clients
    call = clients.notification.SubscribeJobProgress(
        notification_pb2.SubscribeJobProgressRequest(job_id=job_id),
        metadata=principal_metadata(principal, secret=settings.service_token_secret),
        timeout=STREAM_DEADLINE_SECONDS,
    )
    relay = asyncio.create_task(_relay(websocket, call))
    guard = asyncio.create_task(
        _until_revoked(credential, clients, upstream, every=settings.ws_credential_recheck_seconds)
    )
    watcher = asyncio.create_task(_until_disconnect(websocket))
    # What ends the stream says how to close it: the job's end or trouble (relay), or a
    # revoked credential (guard); the client leaving (watcher) needs no close.
    ending: asyncio.Task[tuple[int, str]] = relay
    try:
        await asyncio.wait({relay, guard, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if guard.done() and not relay.done():
            ending = guard
            streams.revoked()
    finally:
        watcher.cancel()
        guard.cancel()
        if not relay.done():
            call.cancel()
            relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(relay, guard, watcher, return_exceptions=True)
    if ending.done() and not ending.cancelled() and ending.exception() is None:
        code, reason = ending.result()
        if websocket.client_state == WebSocketState.CONNECTED:
            await websocket.close(code, reason)
