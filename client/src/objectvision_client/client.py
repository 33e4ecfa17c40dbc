"""`Client` (blocking) and `AsyncClient` (asyncio) for the ObjectVision REST API.

Both run the same `operations`, share one `_Core` for credentials, retries and errors, and
differ only in how they send and wait. Credentials are an API key (`X-API-Key`) or a token
pair from `login`; with tokens, a 401 triggers one refresh and one resend, and the new pair
goes to `on_tokens` so the caller can persist it.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import BinaryIO, Self, TypeVar

import httpx

from objectvision_client import operations as ops
from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError
from objectvision_client.models import (
    ApiKey,
    CreatedApiKey,
    CreatedWebhook,
    DetectionResult,
    ExportedFile,
    HistoryPage,
    Job,
    ServedModel,
    SignUpAccepted,
    StoredDetection,
    TokenPair,
    User,
    VideoFramesPage,
    Webhook,
)
from objectvision_client.operations import DetectionParams, ImageSource, Operation
from objectvision_client.retry import RetryPolicy

T = TypeVar("T")

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 1.0
# Concurrent single-image requests of AsyncClient.detect_images.
MAX_CONCURRENT_DETECTS = 4

TokensCallback = Callable[[TokenPair | None], None]
ProgressCallback = Callable[[Job], None]
# Bytes received so far, called as a download progresses.
BytesCallback = Callable[[int], None]


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

    def headers(self, operation: Operation[T]) -> dict[str, str]:
        headers = dict(operation.headers or {})
        if operation.authenticated:
            if self.api_key:
                headers["X-API-Key"] = self.api_key
            elif self.tokens is not None:
                headers["Authorization"] = f"Bearer {self.tokens.access_token}"
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

    def should_refresh(self, operation: Operation[T], response: httpx.Response) -> bool:
        return (
            response.status_code == 401
            and operation.authenticated
            and not self.api_key
            and self.tokens is not None
        )

    def retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        return self.retry.delay(attempt, response.status_code, response.headers.get("retry-after"))

    def set_tokens(self, tokens: TokenPair | None) -> None:
        self.tokens = tokens
        if self.on_tokens is not None:
            self.on_tokens(tokens)

    def refresh_operation(self) -> Operation[TokenPair]:
        if self.tokens is None:
            raise ObjectVisionError(401, "unauthenticated", "not logged in")
        return ops.refresh(self.tokens.refresh_token)

    def transport_error(self, exc: httpx.TransportError) -> ObjectVisionConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return ObjectVisionConnectionError(f"{self.base_url} did not answer in time")
        return ObjectVisionConnectionError(f"could not reach {self.base_url}: {exc}")

    def broken_download(self, exc: httpx.TransportError, size: int) -> ObjectVisionConnectionError:
        return ObjectVisionConnectionError(
            f"the download from {self.base_url} broke off after {size} bytes: {exc}"
        )

    @staticmethod
    def result(operation: Operation[T], response: httpx.Response) -> T:
        if response.is_success:
            return operation.parse(response)
        raise ObjectVisionError.from_response(response)


class Client:
    """Blocking client. Use as a context manager, or call `close()`."""

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key=api_key,
            tokens=tokens,
            on_tokens=on_tokens,
            retry=retry or RetryPolicy(),
        )
        self._http = httpx.Client(
            base_url=self._core.base_url,
            timeout=timeout,
            headers={"User-Agent": _user_agent(), **(headers or {})},
            transport=transport,
        )

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

    @property
    def tokens(self) -> TokenPair | None:
        return self._core.tokens

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

    # Authentication

    def signup(self, email: str, password: str, name: str) -> SignUpAccepted:
        """Sign up; then `login` with the same email and password."""
        return self.run(ops.signup(email, password, name))

    def login(self, email: str, password: str) -> TokenPair:
        tokens = self.run(ops.login(email, password))
        self._core.set_tokens(tokens)
        return tokens

    def refresh(self) -> TokenPair:
        """A new token pair for the current one; the old refresh token stops working."""
        try:
            tokens = self.run(self._core.refresh_operation())
        except ObjectVisionError as exc:
            if exc.status == 401:
                self._core.set_tokens(None)
            raise
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

    def me(self) -> User:
        return self.run(ops.me())

    # Detection

    def models(self) -> list[ServedModel]:
        """The models the deployment serves; pass a name as ``DetectionParams(model=...)``."""
        return self.run(ops.list_models())

    def detect_image(
        self, image: ImageSource, params: DetectionParams | None = None, *, store: bool = True
    ) -> DetectionResult:
        return self.run(ops.detect_image(image, params or DetectionParams(), store=store))

    def detect_images(
        self, images: Iterable[ImageSource], params: DetectionParams | None = None
    ) -> list[DetectionResult]:
        """One request per image, in order."""
        return [self.detect_image(image, params) for image in images]

    def submit_batch(
        self,
        images: Iterable[ImageSource],
        params: DetectionParams | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        return self.run(
            ops.submit_batch(images, params or DetectionParams(), idempotency_key=idempotency_key)
        )

    def get_job(self, job_id: str) -> Job:
        return self.run(ops.get_job(job_id))

    def submit_video(
        self,
        video: ImageSource,
        params: DetectionParams | None = None,
        *,
        fps: float | None = None,
        every: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """A video file (MP4, MOV or WebM) as a job: `fps` frames a second or every `every`
        n-th frame are detected. Follow it with `wait_for_job`, read `video_frames`."""
        return self.run(
            ops.submit_video(
                video,
                params or DetectionParams(),
                fps=fps,
                every=every,
                idempotency_key=idempotency_key,
            )
        )

    def video_frames(self, job_id: str, *, limit: int = 100, offset: int = 0) -> VideoFramesPage:
        """A page of a video job's per-frame detections with their timestamps."""
        return self.run(ops.video_frames(job_id, limit=limit, offset=offset))

    def annotated_video(
        self, job_id: str, destination: BinaryIO, *, on_progress: BytesCallback | None = None
    ) -> int:
        """A completed video job's annotated MP4, written to `destination` as it arrives;
        returns its size. A job still running raises ObjectVisionError 409."""
        size = 0
        with self._stream(ops.annotated_video(job_id)) as response:
            try:
                for chunk in response.iter_bytes():
                    destination.write(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(size)
            except httpx.TransportError as exc:
                raise self._core.broken_download(exc, size) from exc
        return size

    def wait_for_job(
        self,
        job_id: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Poll until the job completes or fails; TimeoutError after `timeout` seconds."""
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

    def history(
        self, *, limit: int = 20, offset: int = 0, class_name: str | None = None
    ) -> HistoryPage:
        return self.run(ops.history(limit=limit, offset=offset, class_name=class_name))

    def get_detection(self, detection_id: str) -> StoredDetection:
        return self.run(ops.get_detection(detection_id))

    def detection_image(self, detection_id: str, *, annotated: bool = True) -> bytes:
        """The stored image: JPEG with boxes drawn, or the upload as it was."""
        return self.run(ops.detection_image(detection_id, annotated=annotated))

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
            delay = self._core.retry_delay(response, attempt)
            if delay is not None:
                time.sleep(delay)
                attempt += 1
            elif not refreshed and self._core.should_refresh(operation, response):
                self.refresh()
                refreshed = True
            else:
                raise ObjectVisionError.from_response(response)
        try:
            yield response
        finally:
            response.close()

    def export(
        self,
        destination: BinaryIO,
        *,
        format: str = "coco",
        job_id: str | None = None,
        class_name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        on_progress: BytesCallback | None = None,
    ) -> ExportedFile:
        """A finished job's (`job_id`) or the filtered history's detections as COCO JSON,
        a YOLO zip or CSV, written to `destination` as it arrives rather than held in
        memory. A job still running raises ObjectVisionError 409: `wait_for_job` first."""
        operation = ops.export(
            format=format, job_id=job_id, class_name=class_name, since=since, until=until
        )
        size = 0
        with self._stream(operation) as response:
            try:
                for chunk in response.iter_bytes():
                    destination.write(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(size)
            except httpx.TransportError as exc:
                raise self._core.broken_download(exc, size) from exc
            return ExportedFile.from_headers(response.headers, size)

    # API keys and webhooks

    def list_api_keys(self) -> list[ApiKey]:
        return self.run(ops.list_api_keys())

    def create_api_key(self, name: str) -> CreatedApiKey:
        return self.run(ops.create_api_key(name))

    def revoke_api_key(self, key_id: str) -> None:
        self.run(ops.revoke_api_key(key_id))

    def list_webhooks(self) -> list[Webhook]:
        return self.run(ops.list_webhooks())

    def create_webhook(self, url: str, events: Sequence[str] = ()) -> CreatedWebhook:
        return self.run(ops.create_webhook(url, events))

    def delete_webhook(self, webhook_id: str) -> None:
        self.run(ops.delete_webhook(webhook_id))


class AsyncClient:
    """asyncio client with the same methods as `Client`, as coroutines."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key=api_key,
            tokens=tokens,
            on_tokens=on_tokens,
            retry=retry or RetryPolicy(),
        )
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url,
            timeout=timeout,
            headers={"User-Agent": _user_agent(), **(headers or {})},
            transport=transport,
        )
        # Concurrent 401s share one refresh: a second would present a used refresh token.
        self._refresh_lock = asyncio.Lock()

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

    @property
    def tokens(self) -> TokenPair | None:
        return self._core.tokens

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

    async def run(self, operation: Operation[T]) -> T:
        """Send one operation: retries on 429/503, one token refresh on 401."""
        sent_with = self._core.tokens
        response = await self._send(operation)
        if self._core.should_refresh(operation, response):
            async with self._refresh_lock:
                if self._core.tokens is sent_with:
                    await self.refresh()
            response = await self._send(operation)
        return self._core.result(operation, response)

    async def signup(self, email: str, password: str, name: str) -> SignUpAccepted:
        """Sign up; then `login` with the same email and password."""
        return await self.run(ops.signup(email, password, name))

    async def login(self, email: str, password: str) -> TokenPair:
        tokens = await self.run(ops.login(email, password))
        self._core.set_tokens(tokens)
        return tokens

    async def refresh(self) -> TokenPair:
        try:
            tokens = await self.run(self._core.refresh_operation())
        except ObjectVisionError as exc:
            if exc.status == 401:
                self._core.set_tokens(None)
            raise
        self._core.set_tokens(tokens)
        return tokens

    async def logout(self) -> None:
        if self._core.tokens is None:
            return
        try:
            await self.run(ops.logout(self._core.tokens.refresh_token))
        finally:
            self._core.set_tokens(None)

    async def me(self) -> User:
        return await self.run(ops.me())

    async def models(self) -> list[ServedModel]:
        """The models the deployment serves; pass a name as ``DetectionParams(model=...)``."""
        return await self.run(ops.list_models())

    async def detect_image(
        self, image: ImageSource, params: DetectionParams | None = None, *, store: bool = True
    ) -> DetectionResult:
        return await self.run(ops.detect_image(image, params or DetectionParams(), store=store))

    async def detect_images(
        self, images: Iterable[ImageSource], params: DetectionParams | None = None
    ) -> list[DetectionResult]:
        """Up to MAX_CONCURRENT_DETECTS requests at once; results in input order."""
        limit = asyncio.Semaphore(MAX_CONCURRENT_DETECTS)

        async def one(image: ImageSource) -> DetectionResult:
            async with limit:
                return await self.detect_image(image, params)

        return list(await asyncio.gather(*(one(image) for image in images)))

    async def submit_batch(
        self,
        images: Iterable[ImageSource],
        params: DetectionParams | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        return await self.run(
            ops.submit_batch(images, params or DetectionParams(), idempotency_key=idempotency_key)
        )

    async def get_job(self, job_id: str) -> Job:
        return await self.run(ops.get_job(job_id))

    async def submit_video(
        self,
        video: ImageSource,
        params: DetectionParams | None = None,
        *,
        fps: float | None = None,
        every: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """See Client.submit_video."""
        return await self.run(
            ops.submit_video(
                video,
                params or DetectionParams(),
                fps=fps,
                every=every,
                idempotency_key=idempotency_key,
            )
        )

    async def video_frames(
        self, job_id: str, *, limit: int = 100, offset: int = 0
    ) -> VideoFramesPage:
        return await self.run(ops.video_frames(job_id, limit=limit, offset=offset))

    async def annotated_video(
        self, job_id: str, destination: BinaryIO, *, on_progress: BytesCallback | None = None
    ) -> int:
        """See Client.annotated_video (the writes to `destination` are synchronous)."""
        size = 0
        async with self._stream(ops.annotated_video(job_id)) as response:
            try:
                async for chunk in response.aiter_bytes():
                    destination.write(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(size)
            except httpx.TransportError as exc:
                raise self._core.broken_download(exc, size) from exc
        return size

    async def wait_for_job(
        self,
        job_id: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Poll until the job completes or fails; bound the wait with `asyncio.timeout()`."""
        while True:
            job = await self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.done:
                return job
            await asyncio.sleep(poll_seconds)

    async def history(
        self, *, limit: int = 20, offset: int = 0, class_name: str | None = None
    ) -> HistoryPage:
        return await self.run(ops.history(limit=limit, offset=offset, class_name=class_name))

    async def get_detection(self, detection_id: str) -> StoredDetection:
        return await self.run(ops.get_detection(detection_id))

    async def detection_image(self, detection_id: str, *, annotated: bool = True) -> bytes:
        return await self.run(ops.detection_image(detection_id, annotated=annotated))

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
            delay = self._core.retry_delay(response, attempt)
            if delay is not None:
                await asyncio.sleep(delay)
                attempt += 1
            elif not refreshed and self._core.should_refresh(operation, response):
                async with self._refresh_lock:
                    if self._core.tokens is sent_with:
                        await self.refresh()
                refreshed = True
            else:
                raise ObjectVisionError.from_response(response)
        try:
            yield response
        finally:
            await response.aclose()

    async def export(
        self,
        destination: BinaryIO,
        *,
        format: str = "coco",
        job_id: str | None = None,
        class_name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        on_progress: BytesCallback | None = None,
    ) -> ExportedFile:
        """As Client.export. `destination` is written synchronously, chunk by chunk (a
        file or BytesIO; writes of one chunk do not stall the loop noticeably)."""
        operation = ops.export(
            format=format, job_id=job_id, class_name=class_name, since=since, until=until
        )
        size = 0
        async with self._stream(operation) as response:
            try:
                async for chunk in response.aiter_bytes():
                    destination.write(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(size)
            except httpx.TransportError as exc:
                raise self._core.broken_download(exc, size) from exc
            return ExportedFile.from_headers(response.headers, size)

    async def list_api_keys(self) -> list[ApiKey]:
        return await self.run(ops.list_api_keys())

    async def create_api_key(self, name: str) -> CreatedApiKey:
        return await self.run(ops.create_api_key(name))

    async def revoke_api_key(self, key_id: str) -> None:
        await self.run(ops.revoke_api_key(key_id))

    async def list_webhooks(self) -> list[Webhook]:
        return await self.run(ops.list_webhooks())

    async def create_webhook(self, url: str, events: Sequence[str] = ()) -> CreatedWebhook:
        return await self.run(ops.create_webhook(url, events))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.run(ops.delete_webhook(webhook_id))
