"""Job ownership and state, from detection-service, asked as the subscribing user."""

import grpc

from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.errors import NotFound, Unavailable
from objectvision_common.identity import principal_metadata

CALL_TIMEOUT_SECONDS = 5.0
TERMINAL = (
    detection_pb2.JOB_STATUS_COMPLETED,
    detection_pb2.JOB_STATUS_FAILED,
    detection_pb2.JOB_STATUS_CANCELLED,
)


class JobLookup:
    def __init__(self, channel: grpc.aio.Channel, *, service_secret: str) -> None:
        self._stub = detection_pb2_grpc.DetectionServiceStub(channel)
        self._secret = service_secret

    async def get(self, principal: common_pb2.Principal, job_id: str) -> detection_pb2.Job:
        """The job as its owner sees it; NotFound for a job the caller does not own.

        The caller's already verified principal is signed again for this hop rather than
        forwarded, so a stream that outlives the gateway's signature can still ask.
        """
        try:
            job: detection_pb2.Job = await self._stub.GetJob(
                detection_pb2.GetJobRequest(job_id=job_id),
                metadata=principal_metadata(principal, secret=self._secret),
                timeout=CALL_TIMEOUT_SECONDS,
            )
            return job
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                raise NotFound("no such job") from exc
            raise Unavailable("job state is unavailable right now") from exc
