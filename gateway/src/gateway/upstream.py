"""Calls to the internal services on behalf of one HTTP request."""

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc

from gateway.clients import ServiceClients
from gateway.errors import ApiError
from objectvision.v1 import auth_pb2_grpc, detection_pb2_grpc, notification_pb2_grpc

logger = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT")


class Chunk(Protocol):
    """A message of a streamed download: its bytes, and the first one names the content."""

    @property
    def data(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...


ChunkT = TypeVar("ChunkT", bound=Chunk)


@dataclass(frozen=True)
class Upstream:
    """The service stubs plus what every call must carry: the gateway's deadline and, once
    the caller is authenticated, their Principal signed with SERVICE_TOKEN_SECRET.

    A failed call raises grpc.aio.AioRpcError, which gateway.errors turns into HTTP.
    """

    clients: ServiceClients
    deadline_seconds: float
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def auth(self) -> "auth_pb2_grpc.AuthServiceAsyncStub":
        return self.clients.auth

    @property
    def detection(self) -> "detection_pb2_grpc.DetectionServiceAsyncStub":
        return self.clients.detection

    @property
    def notification(self) -> "notification_pb2_grpc.NotificationServiceAsyncStub":
        return self.clients.notification

    def with_deadline(self, deadline_seconds: float) -> "Upstream":
        """The same caller with another deadline (calls that decode images, videos, exports)."""
        return dataclasses.replace(self, deadline_seconds=deadline_seconds)

    async def call(self, method: Callable[..., Awaitable[ResponseT]], request: Any) -> ResponseT:
        """One unary call, e.g. `await upstream.call(upstream.auth.GetUser, request)`."""
        return await method(request, metadata=self.metadata, timeout=self.deadline_seconds)

    async def download(
        self,
        method: Callable[..., grpc.aio.UnaryStreamCall[Any, ChunkT]],
        request: Any,
        *,
        what: str,
    ) -> "Download[ChunkT]":
        """A server-streaming call whose chunks become a response body. The first chunk is
        awaited before answering, so a missing or unready resource is a real status (404,
        409) rather than a 200 that breaks off; an empty stream is the service's bug, a 500."""
        call = method(request, metadata=self.metadata, timeout=self.deadline_seconds)
        chunks = aiter(call)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            call.cancel()
            logger.error("the detection service sent an empty %s", what)
            raise ApiError(500, "internal", "internal error") from None
        except BaseException:
            call.cancel()
            raise
        return Download(first=first, body=_body(first, chunks, call, what), call=call)


@dataclass(frozen=True)
class Download(Generic[ChunkT]):
    """A started download: the first chunk (its content type, its name) and the whole body."""

    first: ChunkT
    body: AsyncIterator[bytes]
    call: grpc.aio.Call

    def cancel(self) -> None:
        """Drop a download that will not be sent after all."""
        self.call.cancel()


async def _body(
    first: ChunkT, chunks: AsyncIterator[ChunkT], call: grpc.aio.Call, what: str
) -> AsyncIterator[bytes]:
    """The body after the headers are sent: a failure now can only cut the response short,
    so it is logged and re-raised (the client sees an incomplete body, never a wrong one)."""
    try:
        if first.data:
            yield first.data
        async for chunk in chunks:
            yield chunk.data
    except grpc.aio.AioRpcError as exc:
        logger.warning("%s stream failed midway", what, extra={"grpc_code": exc.code().name})
        raise
    finally:
        call.cancel()
