"""What every gRPC servicer does the same way: read the caller a trusted service signed,
and write times into replies."""

from datetime import datetime
from typing import Any, overload

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from objectvision.v1 import common_pb2
from objectvision_common.identity import principal_from_metadata

# The context a handler gets. Each servicer answers many message types and the handlers pass
# the context on (to abort, to read metadata), so its request and response types are not
# carried through it.
ServicerContext = grpc.aio.ServicerContext[Any, Any]


def caller_principal(context: ServicerContext, *, secret: str) -> common_pb2.Principal:
    """The verified principal of this call; raises Unauthenticated when absent or forged."""
    return principal_from_metadata(context.invocation_metadata(), secret=secret)


@overload
def timestamp(value: datetime) -> Timestamp: ...
@overload
def timestamp(value: datetime | None) -> Timestamp | None: ...
def timestamp(value: datetime | None) -> Timestamp | None:
    """`value` as a protobuf Timestamp; None (an unset message field) for None."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
