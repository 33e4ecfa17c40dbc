"""Live progress of one job over a WebSocket, relayed from the notification service.

The caller authenticates as every WebSocket does (gateway.auth.websocket); an API key needs
the `results:read` scope. Close codes beyond authentication's: 4404 no such job for this
caller, 4429 the account already holds WS_MAX_STREAMS_PER_ACCOUNT streams on this replica,
1000 after the final event, 1011/1013 on server trouble. While the stream lives its
credential is checked again every WS_CREDENTIAL_RECHECK_SECONDS.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import grpc
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.websockets import WebSocketState

from gateway.auth.dependencies import Authorisation
from gateway.auth.websocket import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
    StreamCaller,
    accept_caller,
    end_stream,
    until_revoked,
)
from gateway.dependencies import ClientsDep, LiveStreamsDep, SettingsDep
from gateway.errors import ApiError
from gateway.live_streams import LiveStreams, StreamKind, TooManyStreams
from objectvision.v1 import notification_pb2
from objectvision_common.api_keys import Scope
from objectvision_common.identity import principal_metadata

logger = logging.getLogger(__name__)

router = APIRouter(tags=["jobs"])

FINAL_EVENT_TYPES = frozenset({"job.completed", "job.failed", "job.cancelled"})
# The stream lives as long as the job; this only bounds a forgotten connection.
STREAM_DEADLINE_SECONDS = 24 * 3600.0
# A WebSocket route takes no HTTP dependencies: the stream checks its caller itself, with the
# same Authorisation the results routes declare.
STREAM_AUTHORISATION = Authorisation(scope=Scope.RESULTS_READ)

_CLOSE_FOR_STATUS = {
    grpc.StatusCode.NOT_FOUND: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.PERMISSION_DENIED: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.INVALID_ARGUMENT: (CLOSE_NOT_FOUND, "no such job"),
    grpc.StatusCode.UNAUTHENTICATED: (CLOSE_UNAUTHENTICATED, "authentication failed"),
    grpc.StatusCode.UNAVAILABLE: (CLOSE_TRY_AGAIN_LATER, "try again later"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (CLOSE_TRY_AGAIN_LATER, "try again later"),
}


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
    try:
        caller = await accept_caller(
            websocket,
            clients,
            authorisation=STREAM_AUTHORISATION,
            deadline_seconds=settings.grpc_deadline_seconds,
        )
    except ApiError as refused:
        # This stream's messages are events only: the close says why.
        await end_stream(websocket, refused, explain=False)
        return
    try:
        with streams.hold(caller.principal.user_id, kind=StreamKind.JOB):
            await _stream(websocket, job_id, caller, settings, streams)
    except TooManyStreams:
        await websocket.close(
            CLOSE_TOO_MANY,
            f"this account already follows {streams.per_account} jobs live; close one first",
        )


async def _stream(
    websocket: WebSocket,
    job_id: str,
    caller: StreamCaller,
    settings: SettingsDep,
    streams: LiveStreams,
) -> None:
    """Relay the job's events until its final one, the client leaving, the credential
    being revoked, or trouble."""
    call = caller.upstream.clients.notification.SubscribeJobProgress(
        notification_pb2.SubscribeJobProgressRequest(job_id=job_id),
        metadata=principal_metadata(caller.principal, secret=settings.service_token_secret),
        timeout=STREAM_DEADLINE_SECONDS,
    )
    relay = asyncio.create_task(_relay(websocket, call))
    guard = asyncio.create_task(until_revoked(caller, every=settings.ws_credential_recheck_seconds))
    watcher = asyncio.create_task(_until_disconnect(websocket))
    # What ends the stream says how to close it: the job's end or trouble (relay), or a
    # revoked credential (guard); the client leaving (watcher) needs no close.
    ending: asyncio.Task[tuple[int, str]] = relay
    try:
        await asyncio.wait({relay, guard, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if guard.done() and not relay.done():
            ending = guard
            streams.revoked(StreamKind.JOB)
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
