"""Client channels that pass the request id and the caller's identity along."""

from collections.abc import Callable
from typing import Any

import grpc

from objectvision_common.grpc_server import MAX_MESSAGE_BYTES
from objectvision_common.request_context import REQUEST_ID_HEADER, current_request_id

DEFAULT_DEADLINE_SECONDS = 10.0


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    request_id = current_request_id()
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if request_id and REQUEST_ID_HEADER not in metadata:
        metadata.add(REQUEST_ID_HEADER, request_id)
    timeout = details.timeout if details.timeout is not None else DEFAULT_DEADLINE_SECONDS
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_request_id(details), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_request_id(details), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_id(details), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_id(details), request_iterator)


def insecure_channel(target: str) -> grpc.aio.Channel:
    """A channel with request-id propagation and a default deadline on every call."""
    return grpc.aio.insecure_channel(
        target,
        interceptors=[_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )
