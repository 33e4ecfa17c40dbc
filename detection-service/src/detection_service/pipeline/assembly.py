"""The inference pipeline one process serves from, built from settings: the Triton model
catalog and clients, the micro-batchers, the CPU pool and the Detector in front of them.

Why one builder: the full service and its realtime role (ADR 0019) serve detections the same
way, so the wiring, the start order and the release order are written once.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2

from detection_service.config import InferenceSettings
from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.annotation_sandbox import SandboxedAnnotator
from detection_service.pipeline.batcher import ModelBatchers
from detection_service.pipeline.catalog import ModelCatalog
from detection_service.pipeline.classes import load_class_names
from detection_service.pipeline.decode import ImageLimits
from detection_service.pipeline.detector import Detector
from detection_service.pipeline.result_cache import ResultCache
from detection_service.pipeline.triton import TritonModel
from detection_service.pipeline.types import DetectionOptions

if TYPE_CHECKING:
    # The meter reads PostgreSQL; the realtime role builds its pipeline without it.
    from detection_service.usage.meter import UsageMeter


@dataclass(frozen=True, kw_only=True)
class InferencePipeline:
    """Started before the server accepts calls; closed after it drained."""

    catalog: ModelCatalog
    executor: ThreadPoolExecutor
    batchers: ModelBatchers
    annotator: SandboxedAnnotator
    detector: Detector

    @classmethod
    async def create(
        cls,
        settings: InferenceSettings,
        *,
        metrics: DetectionMetrics,
        cache: ResultCache | None = None,
        usage: "UsageMeter | None" = None,
    ) -> "InferencePipeline":
        # Parallelism comes from the decode pool; OpenCV's own threads would oversubscribe.
        cv2.setNumThreads(1)
        catalog = ModelCatalog(
            settings.triton_url,
            default_model=settings.triton_model_name,
            refresh_s=settings.model_catalog_refresh_seconds,
        )
        executor = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="detect-cpu")
        class_names = await asyncio.to_thread(load_class_names, settings.served_model_path)

        def triton_model(name: str) -> TritonModel:
            return TritonModel(
                settings.triton_url,
                model_name=name,
                channel_max_age_s=settings.triton_channel_max_age_seconds,
            )

        batchers = ModelBatchers(
            triton_model,
            executor=executor,
            metrics=metrics,
            max_batch=settings.detect_max_batch,
            max_delay_s=settings.detect_max_delay_ms / 1000,
            request_timeout_s=settings.inference_timeout_seconds,
            max_inflight_batches=settings.detect_max_inflight_batches,
            max_queue=settings.detect_max_queue,
            max_queue_per_user=settings.detect_max_queue_per_user,
            background_share=settings.detect_background_share,
        )
        limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
        annotator = SandboxedAnnotator(
            limits=settings.annotation_sandbox,
            images=limits,
            workers=settings.annotation_workers,
            timeout_s=settings.annotation_timeout_seconds,
        )
        detector = Detector(
            batchers=batchers,
            catalog=catalog,
            executor=executor,
            annotator=annotator,
            class_names=class_names,
            limits=limits,
            defaults=DetectionOptions(
                confidence=settings.confidence_threshold,
                iou=settings.iou_threshold,
                max_detections=settings.max_detections,
            ),
            inference_timeout_s=settings.inference_timeout_seconds,
            cache=cache,
            outcomes=metrics.images,
            tiles_cut=metrics.tiles,
            monitor=metrics.model_monitor,
            usage=usage,
            require_verified_email=settings.require_verified_email,
        )
        return cls(
            catalog=catalog,
            executor=executor,
            batchers=batchers,
            annotator=annotator,
            detector=detector,
        )

    async def start(self) -> None:
        self.batchers.start()

    async def close(self) -> None:
        await self.batchers.stop()
        await self.batchers.close()
        await self.catalog.close()
        await asyncio.to_thread(self.annotator.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
