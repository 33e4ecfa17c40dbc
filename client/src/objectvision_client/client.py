"""`Client` (blocking) and `AsyncClient` (asyncio) for the ObjectVision REST API.

Both are thin over `operations`: a plain call is one line binding an operation
(`me = _sync(ops.me)`), and only what sends, waits or keeps state is written out, once per
client, with every decision shared in `_Core`. Credentials are an API key (`X-API-Key`) or
a token pair from `login`; with tokens, a 401 triggers one refresh and one resend, and the
new pair goes to `on_tokens` so the caller can persist it.
"""

import asyncio
import contextlib
import inspect
import json
import time
import typing
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, BinaryIO, Concatenate, Generic, ParamSpec, Self, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_sync

from objectvision_client import operations as ops
from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError
from objectvision_client.live import (
    FrameSender,
    LiveReader,
    connect_options,
    handshake_error,
    live_url,
    send_frames,
)
from objectvision_client.models import (
    CountingLine,
    CountingZone,
    DetectionResult,
    Job,
    LiveFrame,
    LiveReady,
    Session,
    TokenPair,
)
from objectvision_client.operations import (
    BytesCallback,
    DetectionParams,
    Download,
    ImageSource,
    Operation,
)
from objectvision_client.retry import RetryPolicy

T = TypeVar("T")
P = ParamSpec("P")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 1.0
# Concurrent single-image requests of AsyncClient.detect_images.
MAX_CONCURRENT_DETECTS = 4

TokensCallback = Callable[[TokenPair | None], None]
ProgressCallback = Callable[[Job], None]


def _user_agent() -> str:
    try:
        return f"objectvision-client/{version('objectvision-client')}"
    except PackageNotFoundError:
        return "objectvision-client"


class _Core:
    """What both clients decide the same way: headers, refresh, retry waits, errors."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        tokens: TokenPair | None,
        on_tokens: TokensCallback | None,
        retry: RetryPolicy,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.tokens = tokens
        self.on_tokens = on_tokens
        self.retry = retry

    def credentials(self) -> dict[str, str]:
        """The header that authenticates a request: the API key, else the access token."""
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.tokens is not None:
            return {"Authorization": f"Bearer {self.tokens.access_token}"}
        return {}

    def headers(self, operation: Operation[T]) -> dict[str, str]:
        headers = dict(operation.headers or {})
        if operation.authenticated:
            headers.update(self.credentials())
        return headers

    def build(
        self, http: httpx.Client | httpx.AsyncClient, operation: Operation[T]
    ) -> httpx.Request:
        return http.build_request(
            operation.method,
            operation.path,
            params=operation.params,
            json=operation.json,
            data=operation.data,
            files=operation.files,
            headers=self.headers(operation),
        )

    @contextmanager
    def refreshing(self) -> Iterator[None]:
        """Around a refresh: a refused refresh token (401) is forgotten, so the caller logs
        in again instead of presenting it once more."""
        try:
            yield
        except ObjectVisionError as exc:
            if exc.status == 401:
                self.set_tokens(None)
            raise

    def should_refresh(self, operation: Operation[T], response: httpx.Response) -> bool:
        """A 401, or a 403 `email_not_verified`: the access token says whether the address
        was verified when it was minted, so one verified since needs a new token to count."""
        if not operation.authenticated or response.status_code not in (401, 403):
            return False
        return self.refreshes(ObjectVisionError.from_response(response))

    def refreshes(self, error: ObjectVisionError) -> bool:
        """Whether `error` (a response's, or a live stream's close) is one a new access token
        may cure: a 401, or a 403 `email_not_verified` (see `should_refresh`); only with
        tokens, as an API key has nothing to refresh."""
        stale = error.status == 401 or (error.status == 403 and error.code == "email_not_verified")
        return stale and not self.api_key and self.tokens is not None

    def retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        return self.retry.delay(attempt, response.status_code, response.headers.get("retry-after"))

    def stream_retry(
        self, operation: Operation[T], response: httpx.Response, attempt: int, refreshed: bool
    ) -> float | None:
        """After a streamed request's non-2xx `response`: seconds to wait before sending
        again, None to refresh the tokens and send again; raises when neither helps."""
        delay = self.retry_delay(response, attempt)
        if delay is not None:
            return delay
        if not refreshed and self.should_refresh(operation, response):
            return None
        raise ObjectVisionError.from_response(response)

    def live_retry(self, error: ObjectVisionError, attempt: int, refreshed: bool) -> float | None:
        """After a live stream was refused before it was ready, when no frame is lost by
        opening it again: seconds to wait first (a 429 or 503, as `retry_delay`, the wait the
        error message asked for winning), None to refresh the tokens first; raises `error`
        when neither helps."""
        asked = None if error.retry_after is None else f"{error.retry_after:.0f}"
        delay = self.retry.delay(attempt, error.status, asked)
        if delay is not None:
            return delay
        if not refreshed and self.refreshes(error):
            return None
        raise error

    def set_tokens(self, tokens: TokenPair | None) -> None:
        self.tokens = tokens
        if self.on_tokens is not None:
            self.on_tokens(tokens)

    def refresh_operation(self) -> Operation[TokenPair]:
        if self.tokens is None:
            raise ObjectVisionError(401, "unauthenticated", "not logged in")
        return ops.refresh(self.tokens.refresh_token)

    def session_ended(self, session: Session | str) -> None:
        """After `session` ended on the server: when it was this client's own (a `Session`
        listed as `current`), the tokens no longer work and are forgotten, as at logout. An id
        alone cannot say whose session it was without reading the token's claims; a client
        that ended its own that way finds out at its next request, whose refresh is refused."""
        if isinstance(session, Session) and session.current:
            self.set_tokens(None)

    def transport_error(self, exc: httpx.TransportError) -> ObjectVisionConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return ObjectVisionConnectionError(f"{self.base_url} did not answer in time")
        return ObjectVisionConnectionError(f"could not reach {self.base_url}: {exc}")

    @contextmanager
    def downloading(
        self, destination: BinaryIO, on_progress: BytesCallback | None
    ) -> Iterator["_Sink"]:
        """A `_Sink` to write chunks to; a connection lost midway raises
        ObjectVisionConnectionError saying how much arrived."""
        sink = _Sink(destination, on_progress)
        try:
            yield sink
        except httpx.TransportError as exc:
            raise ObjectVisionConnectionError(
                f"the download from {self.base_url} broke off after {sink.size} bytes: {exc}"
            ) from exc

    @staticmethod
    def result(operation: Operation[T], response: httpx.Response) -> T:
        if not response.is_success:
            raise ObjectVisionError.from_response(response)
        try:
            return operation.parse(response)
        except ValueError as exc:  # not JSON, or JSON not in the documented shape
            raise ObjectVisionError.unexpected_response(response, exc) from exc


class _Sink:
    """Chunks written to `destination` as they arrive, counted and reported."""

    def __init__(self, destination: BinaryIO, on_progress: BytesCallback | None) -> None:
        self.destination = destination
        self.on_progress = on_progress
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.destination.write(chunk)
        self.size += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.size)


class _Connection(Generic[HttpT, TransportT]):
    """Construction and state both clients share; `_connect` opens the httpx client."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        api_key: str | None = None,
        tokens: TokenPair | None = None,
        on_tokens: TokensCallback | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        headers: dict[str, str] | None = None,
        transport: TransportT | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key=api_key,
            tokens=tokens,
            on_tokens=on_tokens,
            retry=retry or RetryPolicy(),
        )
        self._headers = {"User-Agent": _user_agent(), **(headers or {})}
        self._timeout = timeout
        self._http: HttpT = self._connect(
            transport, base_url=self._core.base_url, timeout=timeout, headers=self._headers
        )

    def _connect(self, transport: TransportT | None, **options: Any) -> HttpT:
        """The httpx client, with `options` (base URL, timeout, headers) passed through."""
        raise NotImplementedError

    @property
    def tokens(self) -> TokenPair | None:
        return self._core.tokens

    def _live_connect(self) -> tuple[str, dict[str, Any]]:
        """A live stream's URL and websockets' `connect` options: this client's headers with
        its credentials as they are now (a refresh changes them), its timeout to open."""
        headers = httpx.Headers({**self._headers, **self._core.credentials()})
        return live_url(self._core.base_url), connect_options(headers, self._timeout)


# What a bound method builds: an answer read whole, or one streamed to a file.
_Request = Operation[T] | Download[T]


def _bound(method: Callable[..., Any], build: Callable[..., _Request[Any]], owner: str) -> None:
    """Give `method` of class `owner` the name, docstring and signature (after `self`) of the
    operation it runs, so help() and editors show the real call."""
    signature = inspect.signature(build)
    returned = typing.get_args(signature.return_annotation)
    method.__name__ = build.__name__
    method.__qualname__ = f"{owner}.{build.__name__}"
    method.__doc__ = build.__doc__
    method.__dict__["__signature__"] = signature.replace(
        parameters=[
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
            *signature.parameters.values(),
        ],
        return_annotation=returned[0] if returned else inspect.Signature.empty,
    )


def _sync(build: Callable[P, _Request[T]]) -> Callable[Concatenate["Client", P], T]:
    """A `Client` method that builds one operation (or download) and runs it."""

    def method(self: "Client", /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._perform(build(*args, **kwargs))

    _bound(method, build, "Client")
    return method


def _async(
    build: Callable[P, _Request[T]],
) -> Callable[Concatenate["AsyncClient", P], Coroutine[Any, Any, T]]:
    """An `AsyncClient` coroutine method that builds one operation (or download) and runs it."""

    async def method(self: "AsyncClient", /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._perform(build(*args, **kwargs))

    _bound(method, build, "AsyncClient")
    return method


class Client(_Connection[httpx.Client, httpx.BaseTransport]):
    """Blocking client. Use as a context manager, or call `close()`."""

    def _connect(self, transport: httpx.BaseTransport | None, **options: Any) -> httpx.Client:
        return httpx.Client(transport=transport, **options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, operation: Operation[T]) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = self._http.send(self._core.build(self._http, operation))
            except httpx.TransportError as exc:
                raise self._core.transport_error(exc) from exc
            delay = self._core.retry_delay(response, attempt)
            if delay is None:
                return response
            time.sleep(delay)
            attempt += 1

    def run(self, operation: Operation[T]) -> T:
        """Send one operation: retries on 429/503, one token refresh on 401."""
        response = self._send(operation)
        if self._core.should_refresh(operation, response):
            self.refresh()
            response = self._send(operation)
        return self._core.result(operation, response)

    @contextmanager
    def _stream(self, operation: Operation[T]) -> Iterator[httpx.Response]:
        """A 2xx response whose body is still to be read, with `run`'s retries on 429/503
        and its one refresh on 401; anything else raises before a byte is handed over."""
        attempt, refreshed = 1, False
        while True:
            try:
                response = self._http.send(self._core.build(self._http, operation), stream=True)
                if not response.is_success:
                    response.read()
            except httpx.TransportError as exc:
                raise self._core.transport_error(exc) from exc
            if response.is_success:
                break
            response.close()
            delay = self._core.stream_retry(operation, response, attempt, refreshed)
            if delay is None:
                self.refresh()
                refreshed = True
            else:
                time.sleep(delay)
                attempt += 1
        try:
            yield response
        finally:
            response.close()

    def _download(self, download: Download[T]) -> T:
        with (
            self._stream(download.operation) as response,
            self._core.downloading(download.destination, download.on_progress) as sink,
        ):
            for chunk in response.iter_bytes():
                sink.write(chunk)
        return download.result(response.headers, sink.size)

    def _perform(self, request: _Request[T]) -> T:
        if isinstance(request, Download):
            return self._download(request)
        return self.run(request)

    # Authentication

    signup = _sync(ops.signup)
    forgot_password = _sync(ops.forgot_password)
    reset_password = _sync(ops.reset_password)
    verify_email = _sync(ops.verify_email)
    resend_verification = _sync(ops.resend_verification)

    def login(self, email: str, password: str, second_factor_code: str | None = None) -> TokenPair:
        """Log in and keep the tokens (see operations.login for `second_factor_code`)."""
        tokens = self.run(ops.login(email, password, second_factor_code))
        self._core.set_tokens(tokens)
        return tokens

    def refresh(self) -> TokenPair:
        """A new token pair for the current one; the old refresh token stops working."""
        with self._core.refreshing():
            tokens = self.run(self._core.refresh_operation())
        self._core.set_tokens(tokens)
        return tokens

    def logout(self) -> None:
        """End the session on the server; the tokens are forgotten here either way."""
        if self._core.tokens is None:
            return
        try:
            self.run(ops.logout(self._core.tokens.refresh_token))
        finally:
            self._core.set_tokens(None)

    me = _sync(ops.me)
    change_email = _sync(ops.change_email)
    start_two_factor = _sync(ops.start_two_factor)
    confirm_two_factor = _sync(ops.confirm_two_factor)
    regenerate_recovery_codes = _sync(ops.regenerate_recovery_codes)
    disable_two_factor = _sync(ops.disable_two_factor)
    disable_two_factor_for = _sync(ops.disable_two_factor_for)
    usage = _sync(ops.usage)
    set_quota = _sync(ops.set_quota)
    clear_quota = _sync(ops.clear_quota)
    retention = _sync(ops.retention)
    set_retention = _sync(ops.set_retention)
    clear_retention = _sync(ops.clear_retention)
    set_account_status = _sync(ops.set_account_status)
    list_accounts = _sync(ops.list_accounts)

    sessions = _sync(ops.sessions)

    def end_session(self, session: Session | str) -> None:
        """Log one session out (see operations.end_session); this client's own, given as the
        `Session` listed as `current`, also forgets the tokens here."""
        self.run(ops.end_session(session))
        self._core.session_ended(session)

    end_other_sessions = _sync(ops.end_other_sessions)

    def delete_account(self, current_password: str) -> None:
        """Delete the signed-in account (see operations.delete_account); this client's
        tokens are forgotten, since they no longer work."""
        self.run(ops.delete_account(current_password))
        self._core.set_tokens(None)

    # Detection

    models = _sync(ops.models)
    detect_image = _sync(ops.detect_image)
    detect_url = _sync(ops.detect_url)

    def detect_images(
        self, images: Iterable[ImageSource], params: DetectionParams | None = None
    ) -> list[DetectionResult]:
        """One request per image, in order."""
        return [self.detect_image(image, params) for image in images]

    def live(
        self,
        frames: Iterable[bytes],
        params: DetectionParams | None = None,
        *,
        track: bool = False,
        frame_rate: float | None = None,
        lines: Sequence[CountingLine] = (),
        zones: Sequence[CountingZone] = (),
    ) -> Iterator[LiveFrame]:
        """Detect `frames` (each an encoded JPEG, PNG, WebP or BMP image's bytes) over one
        WebSocket (ADR 0059) and yield each one's `LiveFrame`, in order, as it is answered:
        one connection for the whole stream rather than a request per frame, and, with
        `track`, objects followed from frame to frame (`track_id`) and counted crossing
        `lines` and standing in `zones` (in the frames' pixels) as a video job's are.
        `frame_rate` (frames a second) sets how long an object out of sight keeps its id.
        A frame the service cannot detect (not an image, over the quota) is yielded with
        `error` set, and the stream goes on. Nothing is stored.

        At most the server's `max_in_flight` frames are unanswered at once, and `frames` is
        iterated only when one more may go, so a generator reading a camera hands over its
        newest picture rather than a queue of old ones. Refused settings (lines without
        `track`, a confidence of 2), an unknown model, missing credentials or scope, too many
        streams or a frame over the upload limit raise ObjectVisionError with the status the
        REST routes give (422, 404, 401, 403, 429, 413; 503 while the model loads); before
        the first frame it is retried and refreshed as `run` does. Settings are checked when
        this is called, the stream opens at the first answer asked for, and stopping early
        closes it."""
        settings = ops.live_settings(
            params, track=track, frame_rate=frame_rate, lines=lines, zones=zones
        )
        return self._live(settings, frames)

    def _live(self, settings: dict[str, Any], frames: Iterable[bytes]) -> Iterator[LiveFrame]:
        with self._live_stream(settings) as (socket, reader, ready):
            sender = FrameSender(socket, frames, reader, ready.max_in_flight)
            with sender.running():
                while not reader.ended:
                    try:
                        data = socket.recv(timeout=reader.timeout)
                    except TimeoutError:
                        if reader.overdue():
                            raise reader.late() from None
                        continue
                    except ConnectionClosed as exc:
                        raise reader.closed(exc) from None
                    frame = reader.answer(data)
                    if frame is not None:
                        sender.answered()
                        yield frame

    @contextmanager
    def _live_stream(
        self, settings: dict[str, Any]
    ) -> Iterator[tuple[ClientConnection, LiveReader, LiveReady]]:
        """An open stream whose settings the server accepted, with `run`'s retries on 429/503
        and its one refresh on 401; closed after the block."""
        attempt, refreshed = 1, False
        while True:
            stack = ExitStack()
            try:
                socket, reader, ready = self._open_live(stack, settings)
                break
            except ObjectVisionError as exc:
                stack.close()
                delay = self._core.live_retry(exc, attempt, refreshed)
            except BaseException:
                stack.close()
                raise
            if delay is None:
                self.refresh()
                refreshed = True
            else:
                time.sleep(delay)
                attempt += 1
        with stack:
            yield socket, reader, ready

    def _open_live(
        self, stack: ExitStack, settings: dict[str, Any]
    ) -> tuple[ClientConnection, LiveReader, LiveReady]:
        """Connect (the socket joins `stack`), send the settings, wait for `ready`."""
        url, options = self._live_connect()
        reader = LiveReader(url, self._timeout)
        try:
            socket = stack.enter_context(connect_sync(url, **options))
        except (OSError, WebSocketException) as exc:
            raise handshake_error(exc, url) from exc
        try:
            # A server that refused the credentials may have closed already: its reason
            # is read below.
            with contextlib.suppress(ConnectionClosed):
                socket.send(json.dumps(settings))
            while True:
                ready = reader.ready(socket.recv(timeout=self._timeout))
                if ready is not None:
                    return socket, reader, ready
        except TimeoutError:
            raise ObjectVisionConnectionError(f"{url} did not accept the stream in time") from None
        except ConnectionClosed as exc:
            raise reader.closed(exc) from None

    submit_batch = _sync(ops.submit_batch)
    get_job = _sync(ops.get_job)
    list_jobs = _sync(ops.list_jobs)
    cancel_job = _sync(ops.cancel_job)
    rerun_job = _sync(ops.rerun_job)
    rerun_history = _sync(ops.rerun_history)
    delete_job = _sync(ops.delete_job)
    submit_video = _sync(ops.submit_video)
    submit_video_url = _sync(ops.submit_video_url)
    video_frames = _sync(ops.video_frames)
    annotated_video = _sync(ops.annotated_video)

    def wait_for_job(
        self,
        job_id: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Poll until the job completes, fails or is cancelled; TimeoutError after `timeout`
        seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.done:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(poll_seconds)

    history = _sync(ops.history)
    history_summary = _sync(ops.history_summary)
    delete_history = _sync(ops.delete_history)
    get_detection = _sync(ops.get_detection)
    delete_detection = _sync(ops.delete_detection)
    detection_image = _sync(ops.detection_image)
    export = _sync(ops.export)
    evaluate_job = _sync(ops.evaluate_job)

    # API keys and webhooks

    list_api_keys = _sync(ops.list_api_keys)
    create_api_key = _sync(ops.create_api_key)
    revoke_api_key = _sync(ops.revoke_api_key)
    list_webhooks = _sync(ops.list_webhooks)
    create_webhook = _sync(ops.create_webhook)
    rotate_webhook_secret = _sync(ops.rotate_webhook_secret)
    update_webhook = _sync(ops.update_webhook)
    ping_webhook = _sync(ops.ping_webhook)
    delete_webhook = _sync(ops.delete_webhook)
    list_webhook_deliveries = _sync(ops.list_webhook_deliveries)
    redeliver = _sync(ops.redeliver)

    # Share links of detections (ADR 0048) and video jobs (ADR 0052): the owner's three, then
    # a recipient's four, which send the link's token alone, so a client made without
    # credentials calls them.

    create_share_link = _sync(ops.create_share_link)
    list_share_links = _sync(ops.list_share_links)
    revoke_share_link = _sync(ops.revoke_share_link)
    shared = _sync(ops.shared)
    shared_detection = _sync(ops.shared_detection)
    shared_image = _sync(ops.shared_image)
    shared_video = _sync(ops.shared_video)


class AsyncClient(_Connection[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """asyncio client with the same methods as `Client`, as coroutines (`wait_for_job` has
    no `timeout`: bound it with `asyncio.timeout()`)."""

    def _connect(
        self, transport: httpx.AsyncBaseTransport | None, **options: Any
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, **options)

    @cached_property
    def _refresh_lock(self) -> asyncio.Lock:
        """Concurrent 401s share one refresh: a second would present a used refresh token."""
        return asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, operation: Operation[T]) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = await self._http.send(self._core.build(self._http, operation))
            except httpx.TransportError as exc:
                raise self._core.transport_error(exc) from exc
            delay = self._core.retry_delay(response, attempt)
            if delay is None:
                return response
            await asyncio.sleep(delay)
            attempt += 1

    async def _refresh_unless_done(self, sent_with: TokenPair | None) -> None:
        """Refresh, unless another request already replaced the tokens `sent_with`."""
        async with self._refresh_lock:
            if self._core.tokens is sent_with:
                await self.refresh()

    async def run(self, operation: Operation[T]) -> T:
        """Send one operation: retries on 429/503, one token refresh on 401."""
        sent_with = self._core.tokens
        response = await self._send(operation)
        if self._core.should_refresh(operation, response):
            await self._refresh_unless_done(sent_with)
            response = await self._send(operation)
        return self._core.result(operation, response)

    @asynccontextmanager
    async def _stream(self, operation: Operation[T]) -> AsyncIterator[httpx.Response]:
        """As Client._stream: a 2xx response with its body unread, after retries/refresh."""
        attempt, refreshed = 1, False
        while True:
            sent_with = self._core.tokens
            try:
                request = self._core.build(self._http, operation)
                response = await self._http.send(request, stream=True)
                if not response.is_success:
                    await response.aread()
            except httpx.TransportError as exc:
                raise self._core.transport_error(exc) from exc
            if response.is_success:
                break
            await response.aclose()
            delay = self._core.stream_retry(operation, response, attempt, refreshed)
            if delay is None:
                await self._refresh_unless_done(sent_with)
                refreshed = True
            else:
                await asyncio.sleep(delay)
                attempt += 1
        try:
            yield response
        finally:
            await response.aclose()

    async def _download(self, download: Download[T]) -> T:
        """`destination` is written synchronously, chunk by chunk (a file or BytesIO; writes
        of one chunk do not stall the loop noticeably)."""
        async with self._stream(download.operation) as response:
            with self._core.downloading(download.destination, download.on_progress) as sink:
                async for chunk in response.aiter_bytes():
                    sink.write(chunk)
        return download.result(response.headers, sink.size)

    async def _perform(self, request: _Request[T]) -> T:
        if isinstance(request, Download):
            return await self._download(request)
        return await self.run(request)

    signup = _async(ops.signup)
    forgot_password = _async(ops.forgot_password)
    reset_password = _async(ops.reset_password)
    verify_email = _async(ops.verify_email)
    resend_verification = _async(ops.resend_verification)

    async def login(
        self, email: str, password: str, second_factor_code: str | None = None
    ) -> TokenPair:
        tokens = await self.run(ops.login(email, password, second_factor_code))
        self._core.set_tokens(tokens)
        return tokens

    async def refresh(self) -> TokenPair:
        with self._core.refreshing():
            tokens = await self.run(self._core.refresh_operation())
        self._core.set_tokens(tokens)
        return tokens

    async def logout(self) -> None:
        if self._core.tokens is None:
            return
        try:
            await self.run(ops.logout(self._core.tokens.refresh_token))
        finally:
            self._core.set_tokens(None)

    me = _async(ops.me)
    change_email = _async(ops.change_email)
    start_two_factor = _async(ops.start_two_factor)
    confirm_two_factor = _async(ops.confirm_two_factor)
    regenerate_recovery_codes = _async(ops.regenerate_recovery_codes)
    disable_two_factor = _async(ops.disable_two_factor)
    disable_two_factor_for = _async(ops.disable_two_factor_for)
    usage = _async(ops.usage)
    set_quota = _async(ops.set_quota)
    clear_quota = _async(ops.clear_quota)
    retention = _async(ops.retention)
    set_retention = _async(ops.set_retention)
    clear_retention = _async(ops.clear_retention)
    set_account_status = _async(ops.set_account_status)
    list_accounts = _async(ops.list_accounts)

    sessions = _async(ops.sessions)

    async def end_session(self, session: Session | str) -> None:
        await self.run(ops.end_session(session))
        self._core.session_ended(session)

    end_other_sessions = _async(ops.end_other_sessions)

    async def delete_account(self, current_password: str) -> None:
        await self.run(ops.delete_account(current_password))
        self._core.set_tokens(None)

    models = _async(ops.models)
    detect_image = _async(ops.detect_image)
    detect_url = _async(ops.detect_url)

    async def detect_images(
        self, images: Iterable[ImageSource], params: DetectionParams | None = None
    ) -> list[DetectionResult]:
        """Up to MAX_CONCURRENT_DETECTS requests at once; results in input order."""
        limit = asyncio.Semaphore(MAX_CONCURRENT_DETECTS)

        async def one(image: ImageSource) -> DetectionResult:
            async with limit:
                return await self.detect_image(image, params)

        return list(await asyncio.gather(*(one(image) for image in images)))

    def live(
        self,
        frames: Iterable[bytes] | AsyncIterable[bytes],
        params: DetectionParams | None = None,
        *,
        track: bool = False,
        frame_rate: float | None = None,
        lines: Sequence[CountingLine] = (),
        zones: Sequence[CountingZone] = (),
    ) -> AsyncIterator[LiveFrame]:
        """As `Client.live`: detect `frames` (each an encoded JPEG, PNG, WebP or BMP image's
        bytes, from an iterable or an async iterable) over one WebSocket (ADR 0059) and
        yield each one's `LiveFrame`, in order, as it is answered; tracking, counting,
        frame errors, how many frames are in flight and the errors raised are as there.
        Settings are checked when this is called and the stream opens at the first answer
        asked for. To stop early, iterate inside `contextlib.aclosing(...)`: the stream
        closes when the generator does."""
        settings = ops.live_settings(
            params, track=track, frame_rate=frame_rate, lines=lines, zones=zones
        )
        return self._live(settings, frames)

    async def _live(
        self, settings: dict[str, Any], frames: Iterable[bytes] | AsyncIterable[bytes]
    ) -> AsyncIterator[LiveFrame]:
        async with self._live_stream(settings) as (socket, reader, ready):
            slots = asyncio.Semaphore(ready.max_in_flight)
            sender = asyncio.create_task(send_frames(socket, frames, reader, slots))
            try:
                while not reader.ended:
                    try:
                        data = await asyncio.wait_for(socket.recv(), reader.timeout)
                    except TimeoutError:
                        if reader.overdue():
                            raise reader.late() from None
                        continue
                    except ConnectionClosed as exc:
                        raise reader.closed(exc) from None
                    frame = reader.answer(data)
                    if frame is not None:
                        slots.release()
                        yield frame
            finally:
                sender.cancel()
                await socket.close()
                await asyncio.gather(sender, return_exceptions=True)

    @asynccontextmanager
    async def _live_stream(
        self, settings: dict[str, Any]
    ) -> AsyncIterator[tuple[AsyncConnection, LiveReader, LiveReady]]:
        """As Client._live_stream: an open stream whose settings were accepted."""
        attempt, refreshed = 1, False
        while True:
            sent_with = self._core.tokens
            stack = AsyncExitStack()
            try:
                socket, reader, ready = await self._open_live(stack, settings)
                break
            except ObjectVisionError as exc:
                await stack.aclose()
                delay = self._core.live_retry(exc, attempt, refreshed)
            except BaseException:
                await stack.aclose()
                raise
            if delay is None:
                await self._refresh_unless_done(sent_with)
                refreshed = True
            else:
                await asyncio.sleep(delay)
                attempt += 1
        async with stack:
            yield socket, reader, ready

    async def _open_live(
        self, stack: AsyncExitStack, settings: dict[str, Any]
    ) -> tuple[AsyncConnection, LiveReader, LiveReady]:
        """As Client._open_live."""
        url, options = self._live_connect()
        reader = LiveReader(url, self._timeout)
        try:
            socket = await stack.enter_async_context(connect_async(url, **options))
        except (OSError, WebSocketException) as exc:
            raise handshake_error(exc, url) from exc
        try:
            with contextlib.suppress(ConnectionClosed):
                await socket.send(json.dumps(settings))
            while True:
                ready = reader.ready(await asyncio.wait_for(socket.recv(), self._timeout))
                if ready is not None:
                    return socket, reader, ready
        except TimeoutError:
            raise ObjectVisionConnectionError(f"{url} did not accept the stream in time") from None
        except ConnectionClosed as exc:
            raise reader.closed(exc) from None

    submit_batch = _async(ops.submit_batch)
    get_job = _async(ops.get_job)
    list_jobs = _async(ops.list_jobs)
    cancel_job = _async(ops.cancel_job)
    rerun_job = _async(ops.rerun_job)
    rerun_history = _async(ops.rerun_history)
    delete_job = _async(ops.delete_job)
    submit_video = _async(ops.submit_video)
    submit_video_url = _async(ops.submit_video_url)
    video_frames = _async(ops.video_frames)
    annotated_video = _async(ops.annotated_video)

    async def wait_for_job(
        self,
        job_id: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Poll until the job completes, fails or is cancelled; bound the wait with
        `asyncio.timeout()`."""
        while True:
            job = await self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.done:
                return job
            await asyncio.sleep(poll_seconds)

    history = _async(ops.history)
    history_summary = _async(ops.history_summary)
    delete_history = _async(ops.delete_history)
    get_detection = _async(ops.get_detection)
    delete_detection = _async(ops.delete_detection)
    detection_image = _async(ops.detection_image)
    export = _async(ops.export)
    evaluate_job = _async(ops.evaluate_job)

    list_api_keys = _async(ops.list_api_keys)
    create_api_key = _async(ops.create_api_key)
    revoke_api_key = _async(ops.revoke_api_key)
    list_webhooks = _async(ops.list_webhooks)
    create_webhook = _async(ops.create_webhook)
    rotate_webhook_secret = _async(ops.rotate_webhook_secret)
    update_webhook = _async(ops.update_webhook)
    ping_webhook = _async(ops.ping_webhook)
    delete_webhook = _async(ops.delete_webhook)
    list_webhook_deliveries = _async(ops.list_webhook_deliveries)
    redeliver = _async(ops.redeliver)

    create_share_link = _async(ops.create_share_link)
    list_share_links = _async(ops.list_share_links)
    revoke_share_link = _async(ops.revoke_share_link)
    shared = _async(ops.shared)
    shared_detection = _async(ops.shared_detection)
    shared_image = _async(ops.shared_image)
    shared_video = _async(ops.shared_video)
