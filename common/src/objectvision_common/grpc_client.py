"""Client channels that pass the request id along, over plaintext or mutual TLS."""

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import grpc

from objectvision_common.grpc_server import MAX_MESSAGE_BYTES
from objectvision_common.request_context import REQUEST_ID_HEADER, current_request_id
from objectvision_common.tls import ReloadingMaterial, TlsFiles, TlsMaterial, channel_credentials

DEFAULT_DEADLINE_SECONDS = 10.0
# After a certificate rotation, calls still running on the previous channel (job progress
# streams last as long as a job) get this long before they are cancelled. The old connection
# stays valid meanwhile: a certificate is checked at the handshake, and cert-manager renews
# long before the old one expires.
RETIRED_CHANNEL_GRACE_SECONDS = 3600.0

Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    request_id = current_request_id()
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if request_id and metadata.get(REQUEST_ID_HEADER) is None:
        metadata.add(REQUEST_ID_HEADER, request_id)
    timeout = details.timeout if details.timeout is not None else DEFAULT_DEADLINE_SECONDS
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


async def _forward(
    self: grpc.aio.ClientInterceptor,
    continuation: Callable[..., Any],
    details: grpc.aio.ClientCallDetails,
    request: Any,
) -> Any:
    """What each of the four interceptors does with its request (or request iterator)."""
    return await continuation(_with_request_id(details), request)


# The four interceptor methods differ only in their declared types; `_forward` serves all.
_FORWARD: Callable[..., Any] = _forward


# One class a call shape: grpc.aio files an interceptor under the first shape it matches.
class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    intercept_unary_unary = _FORWARD


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    intercept_unary_stream = _FORWARD


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    intercept_stream_unary = _FORWARD


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    intercept_stream_stream = _FORWARD


def _interceptors() -> list[grpc.aio.ClientInterceptor]:
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]


_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.lb_policy_name", "round_robin"),
]


def insecure_channel(target: str) -> grpc.aio.Channel:
    """A channel with request-id propagation and a default deadline on every call."""
    return grpc.aio.insecure_channel(target, interceptors=_interceptors(), options=_OPTIONS)


def service_channel(target: str, tls: TlsFiles | None = None) -> grpc.aio.Channel:
    """The channel a service uses to call another: plaintext without `tls` (local runs),
    mutual TLS with it (the target's host must be one of the server certificate's SANs)."""
    if tls is None:
        return insecure_channel(target)
    return ReloadingTlsChannel(target, tls)


def _secure_channel(target: str, material: TlsMaterial) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(
        target, channel_credentials(material), interceptors=_interceptors(), options=_OPTIONS
    )


class _Rebinding:
    """A multicallable that resolves against the channel current at call time, so stubs
    built once keep working across certificate rotations."""

    def __init__(
        self, owner: "ReloadingTlsChannel", kind: str, method: str, kwargs: dict[str, Any]
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._method = method
        self._kwargs = kwargs
        self._bound_to: grpc.aio.Channel | None = None
        self._bound: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        current = self._owner.current()
        if current is not self._bound_to:
            self._bound = getattr(current, self._kind)(self._method, **self._kwargs)
            self._bound_to = current
        call = self._bound(*args, **kwargs)
        self._owner.calls.add(call)
        return call


class _RebindingUnaryUnary(_Rebinding, grpc.aio.UnaryUnaryMultiCallable[Any, Any]):
    pass


class _RebindingUnaryStream(_Rebinding, grpc.aio.UnaryStreamMultiCallable[Any, Any]):
    pass


class _RebindingStreamUnary(_Rebinding, grpc.aio.StreamUnaryMultiCallable[Any, Any]):
    pass


class _RebindingStreamStream(_Rebinding, grpc.aio.StreamStreamMultiCallable[Any, Any]):
    pass


def _multicallable(kind: str, rebinding: type[_Rebinding]) -> Callable[..., Any]:
    """The channel method `kind` (`unary_unary`, ...) with grpc.aio.Channel's signature:
    a `rebinding` multicallable that resolves against the current channel at call time."""

    def make(
        channel: "ReloadingTlsChannel",
        method: str,
        request_serializer: Serializer | None = None,
        response_deserializer: Deserializer | None = None,
        _registered_method: bool | None = False,
    ) -> _Rebinding:
        arguments = {
            "request_serializer": request_serializer,
            "response_deserializer": response_deserializer,
            "_registered_method": _registered_method,
        }
        return rebinding(channel, kind, method, arguments)

    make.__name__ = make.__qualname__ = kind
    return make


async def _close_when_done(channel: grpc.aio.Channel, calls: list[Any]) -> None:
    """Close a retired channel once its calls ended (RETIRED_CHANNEL_GRACE_SECONDS at most)."""
    waiting = [asyncio.ensure_future(_ended(call)) for call in calls if not call.done()]
    try:
        if waiting:
            await asyncio.wait(waiting, timeout=RETIRED_CHANNEL_GRACE_SECONDS)
    finally:
        for waiter in waiting:
            waiter.cancel()
    await channel.close(None)


async def _ended(call: Any) -> None:
    with contextlib.suppress(Exception):
        await call.code()


class ReloadingTlsChannel(grpc.aio.Channel):
    """A mutual-TLS channel that follows its certificate files.

    gRPC Python cannot swap a client certificate inside a channel, and a channel reconnecting
    with an expired certificate is refused. So each call first checks the files (three
    stats); when they changed, later calls go to a new channel built with the new material,
    and the previous one closes once its calls finished (RETIRED_CHANNEL_GRACE_SECONDS at most).
    """

    def __init__(self, target: str, tls: TlsFiles) -> None:
        self._target = target
        self._material = ReloadingMaterial(tls)
        self._channel = _secure_channel(target, self._material.material)
        # Calls on the current channel: a retired channel waits for these, not for its own
        # close(grace), which a later close() could not shorten.
        self.calls: weakref.WeakSet[Any] = weakref.WeakSet()
        self._retired: dict[grpc.aio.Channel, asyncio.Task[None]] = {}

    def current(self) -> grpc.aio.Channel:
        """The channel for the next call, rebuilt first if the certificate files changed."""
        material = self._material.reload_if_changed()
        if material is not None:
            retired, calls = self._channel, list(self.calls)
            self._channel = _secure_channel(self._target, material)
            self.calls = weakref.WeakSet()
            task = asyncio.get_running_loop().create_task(_close_when_done(retired, calls))
            self._retired[retired] = task
            task.add_done_callback(lambda _: self._retired.pop(retired, None))
        return self._channel

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Close the current channel and any retired one still draining, with `grace`."""
        retired = list(self._retired.items())
        # A retired channel still waiting for its calls has not begun to close: stop the
        # wait, and close it like the current one.
        for _, task in retired:
            task.cancel()
        await asyncio.gather(*(task for _, task in retired), return_exceptions=True)
        await asyncio.gather(self._channel.close(grace), *(old.close(grace) for old, _ in retired))

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()

    unary_unary = _multicallable("unary_unary", _RebindingUnaryUnary)
    unary_stream = _multicallable("unary_stream", _RebindingUnaryStream)
    stream_unary = _multicallable("stream_unary", _RebindingStreamUnary)
    stream_stream = _multicallable("stream_stream", _RebindingStreamStream)
