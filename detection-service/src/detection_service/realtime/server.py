"""`objectvision-detection-realtime`: detection-service's realtime role (ADR 0019).

Internal services that stream video frames want detections back fast and nothing kept. This
role serves ListModels, Detect (store=false) and DetectStream from the inference pipeline
alone: no PostgreSQL, Redis, object storage or video decoder, so its pods start in seconds,
hold no database connections however far they scale, and scale on Triton's load only. The
other RPCs answer UNIMPLEMENTED and Detect with store=true FAILED_PRECONDITION; the gateway
keeps calling the full service (`objectvision-detection`), which serves the same RPCs too.

It reads the full service's inference variables (InferenceSettings) and runs through the same
runner: DETECTION_SERVING_PROCESSES serving processes behind one port, health, metrics.
"""

from collections.abc import Sequence

from prometheus_client import REGISTRY

from detection_service.config import InferenceSettings, serving_processes
from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.assembly import InferencePipeline
from detection_service.realtime.servicer import RealtimeServicer, registration
from objectvision_common.runner import ServiceParts, ServiceRunner


async def build(settings: InferenceSettings) -> ServiceParts:
    pipeline = await InferencePipeline.create(settings, metrics=DetectionMetrics.create(REGISTRY))
    # Abstract to the type checker on purpose: the kept-work RPCs (jobs, history, exports,
    # video) stay with the generated base, which answers UNIMPLEMENTED in this role (ADR 0019).
    servicer = RealtimeServicer(  # type: ignore[abstract]
        detector=pipeline.detector,
        service_secret=settings.service_token_secret,
        max_batch_files=settings.max_batch_files,
        stream_max_in_flight=settings.stream_max_in_flight,
        tracking=settings.tracking,
    )
    return ServiceParts(
        registrations=[registration(servicer)],
        on_start=[pipeline.start],
        on_close=[pipeline.close],
    )


def runner() -> ServiceRunner[InferenceSettings]:
    return ServiceRunner(
        name="detection-realtime",
        prog="objectvision-detection-realtime",
        settings=InferenceSettings,
        build=build,
        migrations=None,
        serving_processes=serving_processes,
    )


def main(argv: Sequence[str] | None = None) -> None:
    runner().main(argv)
