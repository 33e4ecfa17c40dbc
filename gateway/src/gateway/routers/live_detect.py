"""Live detection over a WebSocket (ADR 0059): one DetectStream relayed for clients that
cannot speak gRPC, browsers first.

The gateway authenticates, reads the settings, numbers the frames and translates messages;
the detection service does the rest as it does for gRPC callers (header checks before any
decode, per-frame admission, in-order answers, tracking and counting). The protocol:

1. credentials as every WebSocket takes them (gateway.auth.websocket); an API key needs the
   `detect` scope;
2. one text message of settings (`LiveSettingsIn`, `{}` for the defaults), sent on at once
   as the stream's opening frame, with no image, and answered `{"type": "ready",
   "max_frame_bytes", "max_in_flight"}` once the detection service accepted it (the model
   known and loaded, the counting regions well formed);
3. binary messages, each one encoded frame, the n-th being `sequence` n, each answered in
   order `{"type": "detections", ...}` (`LiveFrameOut`) or `{"type": "frame_error",
   "sequence", "message"}`;
4. `{"type": "end"}`: the answers still owed, then `{"type": "ended", "frames"}` and 1000.

A stream that must end says why in `{"type": "error", "code", "message"}` before its close
frame, whose reason holds only 123 bytes. The gateway reads at most `max_in_flight` frames
ahead of the oldest unanswered one, then stops reading: TCP pushes back on a sender that
outruns the model, and no frame is dropped unseen.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from gateway.auth.dependencies import Authorisation
from gateway.auth.websocket import (
    CLOSE_NORMAL,
    StreamCaller,
    accept_caller,
    end_stream,
    until_revoked,
)
from gateway.config import GatewaySettings
from gateway.dependencies import ClientsDep, LiveStreamsDep, MetricsDep, SettingsDep
from gateway.errors import ApiError, error_from_grpc, validation_error
from gateway.live_streams import LiveStreams, StreamKind, TooManyStreams
from gateway.metrics import GatewayMetrics
from gateway.schemas.live import LiveFrameOut, LiveSettingsIn
from objectvision.v1 import detection_pb2
from objectvision_common.api_keys import Scope
from objectvision_common.identity import principal_metadata

logger = logging.getLogger(__name__)

router = APIRouter(tags=["detection"])

LIVE_DETECT_PATH = "/api/v1/ws/detect"
# A WebSocket route takes no HTTP dependencies: the stream checks its caller itself, with the
# same Authorisation the detect routes declare.
STREAM_AUTHORISATION = Authorisation(scope=Scope.DETECT)
# How long a client may take to send its settings once authenticated.
SETTINGS_TIMEOUT_SECONDS = 10.0
# The stream lives as long as frames come; this only bounds a forgotten connection.
STREAM_DEADLINE_SECONDS = 24 * 3600.0
_MAX_SETTINGS_CHARS = 64 * 1024


class StreamEnded(Exception):
    """The stream must end with this error, said to the client before the close."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class ClientLeft(Exception):
    """The client closed its side or went away: nothing more can be said to it."""


@dataclass(frozen=True)
class _Limits:
    max_frame_bytes: int
    max_in_flight: int


def _invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


async def _settings(websocket: WebSocket) -> LiveSettingsIn:
    """The stream's settings message; StreamEnded (422) for anything else."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout=SETTINGS_TIMEOUT_SECONDS)
    except TimeoutError:
        raise StreamEnded(
            _invalid(f"no settings within {SETTINGS_TIMEOUT_SECONDS:.0f} s: send them first")
        ) from None
    if message["type"] == "websocket.disconnect":
        raise ClientLeft
    text = message.get("text")
    if text is None:
        raise StreamEnded(
            _invalid(
                "send the stream's settings first, as a text message holding a JSON object "
                '({} for the defaults); frames come after the answer {"type": "ready"}'
            )
        )
    if len(text) > _MAX_SETTINGS_CHARS:
        raise StreamEnded(_invalid(f"the settings exceed {_MAX_SETTINGS_CHARS} characters"))
    try:
        return LiveSettingsIn.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        raise StreamEnded(
            validation_error([{**error, "loc": ("settings", *error["loc"])} for error in errors])
        ) from None


@router.websocket(LIVE_DETECT_PATH)
async def live_detect(
    websocket: WebSocket,
    clients: ClientsDep,
    settings: SettingsDep,
    streams: LiveStreamsDep,
    metrics: MetricsDep,
) -> None:
    """Detect objects in frames as they come: settings, then one encoded image per binary
    message, each answered in order (ADR 0059)."""
    try:
        caller = await accept_caller(
            websocket,
            clients,
            authorisation=STREAM_AUTHORISATION,
            deadline_seconds=settings.grpc_deadline_seconds,
        )
        with streams.hold(caller.principal.user_id, kind=StreamKind.DETECT):
            await _stream(websocket, caller, settings, streams, metrics)
    except TooManyStreams:
        too_many = ApiError(
            429,
            "too_many_streams",
            f"this account already holds {streams.per_account} live streams on this "
            "replica; close one first",
        )
        await end_stream(websocket, too_many, explain=True)
    except ApiError as refused:
        await end_stream(websocket, refused, explain=True)
    except StreamEnded as ended:
        await end_stream(websocket, ended.error, explain=True)
    except (ClientLeft, WebSocketDisconnect):
        # Gone before its answers were all sent (a send to it failing says so): nothing to
        # tell it, and the call to the detection service was cancelled on the way out.
        return
    except Exception:
        # A fault of ours: logged, and said to the client as every other end is.
        logger.exception("live detection stream failed")
        await end_stream(websocket, ApiError(500, "internal", "internal error"), explain=True)


async def _stream(
    websocket: WebSocket,
    caller: StreamCaller,
    settings: GatewaySettings,
    streams: LiveStreams,
    metrics: GatewayMetrics,
) -> None:
    """Relay one DetectStream until the client ends it or leaves, the credential is revoked,
    or the stream fails."""
    opening = (await _settings(websocket)).opening_frame()
    limits = _Limits(
        max_frame_bytes=settings.max_upload_bytes, max_in_flight=settings.ws_detect_max_in_flight
    )
    relay = _Relay(websocket, limits, metrics, idle_seconds=settings.ws_detect_idle_seconds)
    relay.send(opening)
    call = caller.upstream.clients.detection.DetectStream(
        relay.frames(),
        metadata=principal_metadata(caller.principal, secret=settings.service_token_secret),
        timeout=STREAM_DEADLINE_SECONDS,
    )
    try:
        try:
            await asyncio.wait_for(relay.accepted(call), settings.detect_deadline_seconds)
        except TimeoutError:
            raise StreamEnded(
                ApiError(504, "deadline_exceeded", "the model did not accept the settings in time")
            ) from None
        await websocket.send_json(
            {
                "type": "ready",
                "max_frame_bytes": limits.max_frame_bytes,
                "max_in_flight": limits.max_in_flight,
            }
        )
        frames = await _relayed(relay, call, caller, settings, streams)
    finally:
        # The call's own task reading `frames()` must end too, or it is left waiting on the
        # queue when the call is done (asyncio: "Task was destroyed but it is pending").
        relay.finish()
        call.cancel()
    await websocket.send_json({"type": "ended", "frames": frames})
    await websocket.close(CLOSE_NORMAL, "stream ended")


async def _relayed(
    relay: "_Relay",
    call: Any,
    caller: StreamCaller,
    settings: GatewaySettings,
    streams: LiveStreams,
) -> int:
    """Frames in and answers out until the call ends after the client's `end` (the frames
    answered), or anything that ends the stream sooner (raised)."""
    reading = asyncio.create_task(relay.read())
    answering = asyncio.create_task(relay.answer(call))
    guard = asyncio.create_task(until_revoked(caller, every=settings.ws_credential_recheck_seconds))
    refused: ApiError | None = None
    try:
        pending: set[asyncio.Task[Any]] = {reading, answering, guard}
        while answering in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if guard in done:
                guard.result()
                streams.revoked(StreamKind.DETECT)
                raise StreamEnded(ApiError.unauthenticated("the credential was revoked"))
            if reading in done:
                # The client's `end` leaves the answers still owed to come, and so does a
                # refused message (a frame too large, stray text, no frame for too long):
                # the stream ends with its error once those are sent. A client gone ends
                # it now.
                refused = reading.result()
        answered = answering.result()
        if refused is not None:
            raise StreamEnded(refused)
        return answered
    finally:
        for task in (reading, answering, guard):
            task.cancel()
        await asyncio.gather(reading, answering, guard, return_exceptions=True)


class _Relay:
    """The two halves of one stream: frames from the WebSocket into the gRPC call, answers
    from the call back to the WebSocket, with at most `max_in_flight` frames unanswered."""

    def __init__(
        self,
        websocket: WebSocket,
        limits: _Limits,
        metrics: GatewayMetrics,
        *,
        idle_seconds: float,
    ) -> None:
        self._websocket = websocket
        self._limits = limits
        self._idle_seconds = idle_seconds
        self._metrics = metrics
        self._unanswered = asyncio.Semaphore(limits.max_in_flight)
        self._frames: asyncio.Queue[detection_pb2.Frame | None] = asyncio.Queue()

    def send(self, frame: detection_pb2.Frame) -> None:
        """Queue `frame` for the call (the opening one, with the settings and no image)."""
        self._frames.put_nowait(frame)

    def finish(self) -> None:
        """No frame comes after those queued: `frames()` ends once it has given them."""
        self._frames.put_nowait(None)

    async def accepted(self, call: Any) -> None:
        """Wait for the detection service's `ready` to the opening frame: the model known and
        loaded, the counting regions well formed (whether they lie inside the picture is known
        only from the frames: the first that a region leaves ends the stream, 422). StreamEnded
        with its refusal otherwise."""
        try:
            answer = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise _upstream_error(exc) from None
        if answer is grpc.aio.EOF or not answer.ready:
            # A detection service that predates `ready` (mid-rollout) answers a frame instead.
            logger.warning(
                "the detection service answered a live stream's settings without ready",
                extra={"answer": "end of stream" if answer is grpc.aio.EOF else "a frame"},
            )
            raise StreamEnded(ApiError(500, "internal", "the detection service did not accept"))

    async def frames(self) -> AsyncIterator[detection_pb2.Frame]:
        """The gRPC call's requests: each frame read, until the client's `end`."""
        while (frame := await self._frames.get()) is not None:
            yield frame

    async def read(self) -> ApiError | None:
        """Read frames until the client's `end` (None) or a message that ends the stream (its
        error: a frame too large, stray text, no frame for `idle_seconds`); either way no
        frame follows, and the frames read are still answered. ClientLeft when it left."""
        sequence = 0
        try:
            while True:
                await self._unanswered.acquire()
                try:
                    message = await asyncio.wait_for(self._websocket.receive(), self._idle_seconds)
                except TimeoutError:
                    return ApiError(
                        408,
                        "stream_idle",
                        f"no frame for {self._idle_seconds:.0f} s: the stream was ended; open "
                        "a new one when frames come again",
                    )
                if message["type"] == "websocket.disconnect":
                    raise ClientLeft
                data = message.get("bytes")
                if data is None:
                    return self._end(message.get("text"))
                if len(data) > self._limits.max_frame_bytes:
                    return ApiError(
                        413,
                        "frame_too_large",
                        f"frame {sequence + 1} has {len(data)} bytes; a frame may have at most "
                        f"{self._limits.max_frame_bytes}",
                    )
                sequence += 1
                await self._frames.put(
                    detection_pb2.Frame(
                        sequence=sequence, image=detection_pb2.ImageInput(data=data)
                    )
                )
        finally:
            self.finish()

    @staticmethod
    def _end(text: str | None) -> ApiError | None:
        """None for the client's `{"type": "end"}`; the error of any other text."""
        try:
            message = json.loads(text or "")
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "end":
            return None
        return _invalid(
            'after the settings, send each frame as a binary message, or {"type": "end"} to '
            "end the stream once its frames are answered"
        )

    async def answer(self, call: Any) -> int:
        """Send each answer in order; the number of frames answered once the call ends.
        A failed call ends the stream with its error (the model unknown 404, loading 503)."""
        answered = 0
        try:
            # read(), not `async for`: the call's first answer was read so (grpc.aio refuses
            # the two styles on one call).
            while (answer := await call.read()) is not grpc.aio.EOF:
                await self._websocket.send_json(_answer_message(answer))
                self._metrics.live_frames.labels(
                    "frame_error" if answer.error else "detected"
                ).inc()
                answered += 1
                self._unanswered.release()
        except grpc.aio.AioRpcError as exc:
            raise _upstream_error(exc) from None
        except WebSocketDisconnect:
            raise ClientLeft from None
        return answered


def _upstream_error(exc: grpc.aio.AioRpcError) -> StreamEnded:
    """The stream's end for a failed call: an unknown model 404, one loading 503, counting
    regions refused 422, as the REST routes say them."""
    error = error_from_grpc(exc.code(), exc.details(), exc.trailing_metadata())
    if error.status_code >= 500:
        logger.warning("live detection stream failed", extra={"grpc_code": exc.code().name})
    return StreamEnded(error)


def _answer_message(answer: detection_pb2.FrameDetections) -> dict[str, Any]:
    if answer.error:
        return {"type": "frame_error", "sequence": answer.sequence, "message": answer.error}
    return LiveFrameOut.from_proto(answer).model_dump(mode="json", by_alias=True)
