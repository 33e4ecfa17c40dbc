"""Images and videos the gateway fetches from the URLs callers give (ADR 0027).

A URL fetch is a connection the gateway opens on a caller's behalf, from inside the network:
the shared guard (objectvision_common.public_urls) checks the URL and every address its host
resolves to, and the connection goes to those checked addresses only. Redirects are followed
by hand, at most MAX_REDIRECTS, each location checked the same way. The body is streamed and
cut off past the upload limit (refused at once when Content-Length already says too much),
and the whole fetch, lookups and redirects included, has one deadline.

Only the transport is judged here: what the bytes are (format, completeness, pixel count,
a video's codec and length) is the detection service's to say, exactly as for an upload. An
image is read into memory (it is at most MAX_UPLOAD_BYTES); a video is written to the file
the caller gives, a spooled temporary file, never whole in memory.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from gateway.errors import ApiError
from objectvision_common.public_urls import (
    IPAddress,
    PublicUrl,
    RefusedUrl,
    UnresolvedHost,
    parse_public_url,
    pinned_stream,
    resolve_allowed,
)
from objectvision_common.sizes import readable_size

MAX_REDIRECTS = 3
# The fetches of one batch request that run at once.
FETCHES_PER_BATCH = 8
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class MediaKind:
    """What a fetcher fetches: the word its messages use, the Accept it sends, and the error
    codes of a refused URL (`<noun>_url_forbidden`) and of one that gave nothing
    (`<noun>_url_unreachable`)."""

    noun: str
    accept: str

    def forbidden(self, message: str) -> ApiError:
        """422: a URL the gateway will not fetch, whatever it serves."""
        return ApiError(422, f"{self.noun}_url_forbidden", message)

    def unreachable(self, message: str) -> ApiError:
        """422: the URL was allowed but gave nothing (ADR 0027 says why this is a 422 and not
        a 502: the caller's URL failed, not the gateway)."""
        return ApiError(422, f"{self.noun}_url_unreachable", message)


IMAGE = MediaKind(noun="image", accept="image/*")
VIDEO = MediaKind(noun="video", accept="video/*")


def url_filename(url: str) -> str:
    """The last segment of the URL's path, percent-decoded: `.../photos/bus%201.jpg` is
    `bus 1.jpg`. The detection service sanitises it as it does an upload's filename."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    # What the remote server said it is; informative only (the bytes are judged, not this).
    content_type: str


class WritableFile(Protocol):
    def write(self, data: bytes, /) -> object: ...


class OverBudget(Exception):
    """A batch's fetches went past the bytes it may hold (ByteBudget): the whole request is
    refused, not the one image whose chunk passed it."""


class ByteBudget:
    """The bytes one request's fetches may hold in memory at once, shared by them: a batch of
    URLs is refused as its images arrive past MAX_BATCH_BYTES together, rather than after
    every one of them (each up to MAX_UPLOAD_BYTES) is held. A fetch that fails gives its
    bytes back; a fetched image keeps them."""

    def __init__(self, most: int, *, held: int = 0) -> None:
        self.most = most
        self.held = held

    def take(self, size: int) -> None:
        if self.held + size > self.most:
            raise OverBudget
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


class _Sink:
    """Where a body goes, counted: memory for an image, the caller's file for a video
    (written from a worker thread, as Starlette writes an upload's file: it may be on disk),
    each chunk first taken from the request's budget where it has one."""

    def __init__(self, file: WritableFile | None = None, budget: ByteBudget | None = None) -> None:
        self.file = file
        self.budget = budget
        self.data = bytearray()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        if self.budget is not None:
            self.budget.take(len(chunk))
        if self.file is None:
            self.data += chunk
        else:
            await asyncio.to_thread(self.file.write, chunk)
        self.size += len(chunk)


class UrlFetcher:
    """Fetches one kind of media for one gateway process; `client` is `pinned_http_client()`,
    opened and closed with the app (gateway.app)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        kind: MediaKind,
        allow_private: bool,
        max_bytes: int,
        timeout_seconds: float,
    ) -> None:
        self._client = client
        self._kind = kind
        self._allow_private = allow_private
        self._max_bytes = max_bytes
        self._timeout_seconds = timeout_seconds
        # Media are compressed already; asking for no content coding also keeps a small
        # compressed body from expanding past the byte limit in one chunk.
        self._headers = {
            "User-Agent": f"ObjectVision-{kind.noun.capitalize()}Fetcher/1",
            "Accept": kind.accept,
            "Accept-Encoding": "identity",
        }

    async def fetch(self, url: str, *, budget: ByteBudget | None = None) -> FetchedImage:
        """The media at `url`, in memory; ApiError 422 `<noun>_url_forbidden` or
        `<noun>_url_unreachable`, or 413 `payload_too_large`, with a message that says what
        happened. With `budget`, its bytes are taken from it as they arrive (OverBudget once
        they would pass it) and given back if the fetch fails."""
        sink = _Sink(budget=budget)
        try:
            content_type = await self._deadlined(url, sink)
        except BaseException:
            if budget is not None:
                budget.give_back(sink.size)
            raise
        return FetchedImage(data=bytes(sink.data), content_type=content_type)

    async def fetch_to(self, url: str, file: WritableFile) -> int:
        """The media at `url` written to `file` as it arrives; how many bytes. Errors as
        `fetch`'s; on one, `file` holds part of a body and is the caller's to discard."""
        sink = _Sink(file)
        await self._deadlined(url, sink)
        return sink.size

    async def _deadlined(self, url: str, sink: _Sink) -> str:
        noun = self._kind.noun
        try:
            async with asyncio.timeout(self._timeout_seconds):
                return await self._follow(url, sink)
        except TimeoutError:
            raise self._kind.unreachable(
                f"the {noun} URL did not send the whole {noun} within {self._timeout_seconds:g} s"
            ) from None

    async def _follow(self, url: str, sink: _Sink) -> str:
        """Fetch into `sink`, following redirects; the Content-Type the server named."""
        noun = self._kind.noun
        unreachable = self._kind.unreachable
        location = url
        for hop in range(MAX_REDIRECTS + 1):
            target, addresses = await self._checked(location, redirected=hop > 0)
            async with self._opened(target, addresses) as response:
                status = response.status_code
                if status in _REDIRECT_STATUSES:
                    next_location = response.headers.get("location")
                    if not next_location:
                        raise unreachable(
                            f"the {noun} URL answered {_status(status)} without a Location"
                        )
                    # Joined to the URL as named, not to the pinned address it was sent to.
                    location = urljoin(location, next_location)
                    continue
                if not 200 <= status < 300:
                    raise unreachable(f"the {noun} URL answered {_status(status)}")
                await self._body(response, sink)
                return str(response.headers.get("content-type", ""))
        raise unreachable(f"the {noun} URL redirected more than {MAX_REDIRECTS} times")

    async def _checked(self, url: str, *, redirected: bool) -> tuple[PublicUrl, list[IPAddress]]:
        """The URL and its addresses, once both pass the guard."""
        noun = self._kind.noun
        try:
            target = parse_public_url(url)
            return target, await resolve_allowed(target, allow_private=self._allow_private)
        except UnresolvedHost as exc:
            raise self._kind.unreachable(f"{noun} {exc.message}") from None
        except RefusedUrl as exc:
            if redirected:
                raise self._kind.forbidden(
                    f"the {noun} URL redirected to a refused URL: {exc.message}"
                ) from None
            raise self._kind.forbidden(f"{noun} {exc.message}") from None

    @asynccontextmanager
    async def _opened(
        self, target: PublicUrl, addresses: list[IPAddress]
    ) -> AsyncIterator[httpx.Response]:
        """The streamed response from the checked addresses; transport failures, while
        connecting or while reading the body, as `<noun>_url_unreachable`."""
        unreachable = self._kind.unreachable
        try:
            async with pinned_stream(
                self._client,
                "GET",
                target,
                addresses,
                headers=self._headers,
                timeout_seconds=self._timeout_seconds,
            ) as response:
                yield response
        except httpx.TimeoutException:
            raise unreachable(f"{target.host} did not answer in time") from None
        except httpx.ConnectError:
            raise unreachable(f"could not connect to {target.host}") from None
        except httpx.RemoteProtocolError:
            # A malformed response, a Location httpx cannot read among them.
            raise unreachable(
                f"{target.host} answered with something that is not valid HTTP"
            ) from None
        except httpx.HTTPError as exc:
            raise unreachable(
                f"the connection to {target.host} failed ({type(exc).__name__})"
            ) from None

    async def _body(self, response: httpx.Response, sink: _Sink) -> None:
        """The body as sent (no content decoding) into `sink`, cut off as soon as it passes
        the limit."""
        declared = response.headers.get("content-length", "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(f"is {readable_size(int(declared))}")
        async for chunk in response.aiter_raw():
            if sink.size + len(chunk) > self._max_bytes:
                raise self._too_large(f"is over {readable_size(self._max_bytes)}")
            await sink.write(chunk)

    def _too_large(self, size: str) -> ApiError:
        noun = self._kind.noun
        return ApiError(
            413,
            "payload_too_large",
            f"the {noun} at the URL {size}; at most {readable_size(self._max_bytes)} per {noun}"
            " are accepted",
        )


def _status(status: int) -> str:
    """`404 Not Found`: the status the remote server answered, with its standard phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
