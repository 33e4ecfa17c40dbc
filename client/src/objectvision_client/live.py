"""Live detection over a WebSocket (ADR 0059): what `Client.live` and `AsyncClient.live` share.

A stream is one connection: the settings as its first message, the server's `ready`, then
binary frames out and one answer per frame back, in order, until `{"type": "end"}` is
answered with `ended`. The two clients differ only in how they wait (a sender thread or a
sender task); how a message is read, when an answer is overdue and which error a close
stands for are decided here, once.
"""

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection

from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError
from objectvision_client.models import LiveFrame, LiveReady
from objectvision_client.operations import LIVE_DETECT_PATH, LIVE_END

# Frames are encoded images already: compressing them again costs both ends CPU for nothing.
COMPRESSION = None
END_MESSAGE = json.dumps(LIVE_END)
# Answers are JSON of one frame's objects; this bounds one from a server gone wrong.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
FRAME_TYPES = (bytes, bytearray, memoryview)


def live_url(base_url: str) -> str:
    """The stream's ws:// (or wss://) URL under the API's base URL, its path prefix kept."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit(parts._replace(scheme=scheme, path=parts.path.rstrip("/") + LIVE_DETECT_PATH))


def handshake_error(exc: Exception, url: str) -> ObjectVisionError:
    """The error of a stream that never opened: an HTTP refusal of the upgrade (a proxy, a
    rate limit, a gateway without the route) read as the REST routes' are; the server not
    reached or not speaking WebSocket, a connection error."""
    if isinstance(exc, InvalidStatus):
        answer = exc.response
        response = httpx.Response(
            answer.status_code,
            headers=list(answer.headers.raw_items()),
            content=bytes(answer.body),
        )
        return ObjectVisionError.from_response(response)
    if isinstance(exc, TimeoutError):
        return ObjectVisionConnectionError(f"{url} did not answer in time")
    if isinstance(exc, InvalidHandshake):
        return ObjectVisionConnectionError(f"{url} did not open a WebSocket: {exc}")
    return ObjectVisionConnectionError(f"could not reach {url}: {exc}")


class LiveReader:
    """One stream's messages as they arrive: the `ready` that opens it, each answer in order,
    the `ended` that closes it, and the `error` message a refusing close follows (kept, since
    it explains the close better than the close's 123-byte reason)."""

    def __init__(self, url: str, timeout: float | None) -> None:
        self.url = url
        self.timeout = timeout
        self.refusal: dict[str, Any] | None = None
        self.ended = False
        # When each frame not yet answered was sent, oldest first, and when `end` was: what
        # says whether the server is late (the sender appends, the reader takes).
        self.sent_at: deque[float] = deque()
        self.end_sent_at: float | None = None
        # What the caller's frames raised: the sender keeps it here before it closes the
        # stream, so the close it causes is never mistaken for the server's.
        self.failure: BaseException | None = None

    def _message(self, data: str | bytes) -> dict[str, Any]:
        if isinstance(data, bytes):
            raise self._unexpected("a binary message")
        try:
            message = json.loads(data)
        except ValueError:
            raise self._unexpected("a message that is not JSON") from None
        if not isinstance(message, dict):
            raise self._unexpected("a message that is not a JSON object")
        return message

    def _unexpected(self, what: str) -> ObjectVisionError:
        return ObjectVisionError(
            0,
            "unexpected_response",
            f"{self.url} sent {what}; is the API URL an ObjectVision gateway of a compatible "
            "version?",
        )

    def ready(self, data: str | bytes) -> LiveReady | None:
        """The `ready` in `data`; None for an `error` (kept: the close follows it)."""
        message = self._message(data)
        if message.get("type") == "error":
            self.refusal = message
            return None
        if message.get("type") != "ready":
            raise self._unexpected(f"{message.get('type')!r} before accepting the settings")
        try:
            return LiveReady.from_json(message)
        except ValidationError as exc:
            raise self._unexpected(f"a `ready` it cannot read ({exc.errors()[0]['msg']})") from exc

    def answer(self, data: str | bytes) -> LiveFrame | None:
        """The frame answer in `data`; None for any other message (`ended`, an `error`, a
        type this version does not know), whose meaning is kept here."""
        message = self._message(data)
        kind = message.get("type")
        if kind == "ended":
            self.ended = True
        elif kind == "error":
            self.refusal = message
        elif kind in ("detections", "frame_error"):
            try:
                frame = LiveFrame.from_json(message)
            except ValidationError as exc:
                what = f"an answer it cannot read ({exc.errors()[0]['msg']})"
                raise self._unexpected(what) from exc
            if self.sent_at:
                self.sent_at.popleft()
            return frame
        return None

    def overdue(self) -> bool:
        """Whether the server owes an answer (a frame's, or the `ended` after `end`) for
        longer than the client's timeout. Between frames nothing is owed: a camera that
        sends one a minute is not a server that stopped answering."""
        if self.timeout is None:
            return False
        oldest = self.sent_at[0] if self.sent_at else self.end_sent_at
        return oldest is not None and time.monotonic() - oldest >= self.timeout

    def late(self) -> ObjectVisionConnectionError:
        return ObjectVisionConnectionError(f"{self.url} did not answer a frame in time")

    def closed(self, exc: ConnectionClosed) -> BaseException:
        """The error the stream's close stands for: what the caller's frames raised, if that
        closed it, else `ObjectVisionError.from_close`'s; a connection lost without a close,
        or a normal close before `ended`, is a connection error."""
        if self.failure is not None:
            return self.failure
        close = exc.rcvd
        if close is None:
            return ObjectVisionConnectionError(f"the live stream from {self.url} broke off")
        if close.code == 1000 and self.refusal is None:
            return ObjectVisionConnectionError(
                f"{self.url} closed the live stream before answering every frame"
            )
        return ObjectVisionError.from_close(close.code, close.reason, self.refusal)


def checked_frame(data: object) -> bytes | bytearray | memoryview:
    """A frame to send as one binary message; text would be a JSON message to the server."""
    if not isinstance(data, FRAME_TYPES):
        raise TypeError(f"a live frame is an encoded image's bytes, not {type(data).__name__}")
    return data


def connect_options(headers: httpx.Headers, timeout: float | None) -> dict[str, Any]:
    """websockets' `connect` options of a stream opened with `headers` (the client's own and
    its credentials) within `timeout`: User-Agent is websockets' own option, the rest are
    sent as they are."""
    return {
        "additional_headers": [
            (name, value) for name, value in headers.multi_items() if name != "user-agent"
        ],
        "user_agent_header": headers.get("user-agent"),
        "open_timeout": timeout,
        "compression": COMPRESSION,
        "max_size": MAX_ANSWER_BYTES,
    }


class FrameSender:
    """`Client.live`'s frames, sent on a thread of its own while the caller reads answers:
    each frame is taken from the caller's iterable only once fewer than `in_flight` are
    unanswered, so a camera's generator is asked for its newest frame when the server can
    take one rather than queueing stale ones; `{"type": "end"}` after the last. What the
    iterable raises is kept in the reader (`LiveReader.failure`) and the stream closed, so
    the caller reading answers raises it."""

    def __init__(
        self, socket: ClientConnection, frames: Iterable[Any], reader: LiveReader, in_flight: int
    ) -> None:
        self.socket = socket
        self.frames = frames
        self.reader = reader
        self.slots = threading.Semaphore(in_flight)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="objectvision-live", daemon=True)

    def _run(self) -> None:
        try:
            frames = iter(self.frames)
            while True:
                self.slots.acquire()
                if self.stopping.is_set():
                    return
                try:
                    frame = checked_frame(next(frames))
                except StopIteration:
                    break
                self.reader.sent_at.append(time.monotonic())
                self.socket.send(frame)
            self.reader.end_sent_at = time.monotonic()
            self.socket.send(END_MESSAGE)
        except ConnectionClosed:
            return  # the reader sees the close and says why
        except Exception as exc:
            self.reader.failure = exc
            self.socket.close()

    def answered(self) -> None:
        """An answer came: one more frame may be sent."""
        self.slots.release()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Send while the block runs; after it, stop taking frames and close the stream (a
        caller that stopped reading early ends the stream this way: nothing more is owed)."""
        self.thread.start()
        try:
            yield
        finally:
            self.stopping.set()
            self.slots.release()
            self.socket.close()
            self.thread.join(self.reader.timeout)


async def _each(frames: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(frames, AsyncIterable):
        async for frame in frames:
            yield frame
    else:
        for frame in frames:
            yield frame


async def send_frames(
    socket: AsyncConnection,
    frames: Iterable[Any] | AsyncIterable[Any],
    reader: LiveReader,
    slots: asyncio.Semaphore,
) -> None:
    """`AsyncClient.live`'s frames, as `FrameSender` sends them, as a task."""
    try:
        each = _each(frames)
        while True:
            await slots.acquire()
            try:
                frame = checked_frame(await anext(each))
            except StopAsyncIteration:
                break
            reader.sent_at.append(time.monotonic())
            await socket.send(frame)
        reader.end_sent_at = time.monotonic()
        await socket.send(END_MESSAGE)
    except ConnectionClosed:
        return
    except Exception as exc:
        reader.failure = exc
        await socket.close()
