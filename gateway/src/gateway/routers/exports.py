"""Exports: a finished job's, or the caller's filtered history's, detections as one file to
download (COCO JSON, a zip of YOLO labels, CSV).

The detection service writes the file page by page (docs/adr/0015-exports.md); the gateway
checks the query, streams the chunks through as they come and names the download. Routes sit
beside the resources they export: /detect/jobs/{job_id}/export and /detect/history/export,
the latter taking the same filters as /detect/history.
"""

import logging
import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import StreamingResponse

from gateway.auth.dependencies import ResultsReadUpstream, signed_in_router
from gateway.dependencies import SettingsDep
from gateway.detect_dependencies import HistoryFilterQuery
from gateway.errors import ApiError, error_responses
from gateway.routers import detect
from gateway.upstream import Upstream
from objectvision.v1 import detection_pb2

logger = logging.getLogger(__name__)

ExportFormat = Literal["coco", "yolo", "csv"]
_FORMATS: Mapping[ExportFormat, detection_pb2.ExportFormat] = MappingProxyType(
    {
        "coco": detection_pb2.EXPORT_FORMAT_COCO,
        "yolo": detection_pb2.EXPORT_FORMAT_YOLO,
        "csv": detection_pb2.EXPORT_FORMAT_CSV,
    }
)
_MEDIA_TYPES = {"application/json", "application/zip", "text/csv"}
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_FORMAT_DESCRIPTION = (
    "`coco`: COCO detection JSON (boxes [x, y, width, height] in pixels, scores, the model's "
    "classes as categories); `yolo`: a zip of YOLO label files (normalised centre and size), "
    "data.yaml with the class names and images.csv with each image's size; `csv`: one row "
    "per object, boxes in pixels."
)
FormatQuery = Annotated[ExportFormat, Query(description=_FORMAT_DESCRIPTION)]

router = signed_in_router(detect.DETECT_PREFIX, "exports")

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed; Content-Disposition names it.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "headers": {
            "Content-Disposition": {
                "description": 'attachment; filename="objectvision-….json|zip|csv"',
                "schema": {"type": "string"},
            }
        },
    },
}


async def _download(
    upstream: Upstream, request: detection_pb2.ExportDetectionsRequest, deadline_seconds: float
) -> StreamingResponse:
    """The export as a streamed download, named by the service; a missing or unfinished job
    is a real 404 or 409 rather than a 200 that breaks off."""
    download = await upstream.with_deadline(deadline_seconds).download(
        upstream.detection.ExportDetections, request, what="export"
    )
    media_type = download.first.content_type
    if media_type.split(";")[0].strip() not in _MEDIA_TYPES:
        download.cancel()
        logger.error("the detection service sent an export of an unexpected type")
        raise ApiError(500, "internal", "internal error")
    filename = _UNSAFE_FILENAME_CHARS.sub("_", download.first.filename) or "objectvision-export"
    return StreamingResponse(
        download.body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/jobs/{job_id:uuid}/export",
    summary="A finished batch job's detections as COCO JSON, YOLO labels (zip) or CSV",
    response_class=StreamingResponse,
    responses={**_RESPONSES, **error_responses(404, 409, 422)},
)
async def export_job(
    job_id: uuid.UUID, format: FormatQuery, upstream: ResultsReadUpstream, settings: SettingsDep
) -> StreamingResponse:
    """Every image of the job that was detected, in upload order, with the class names of
    the model that produced them. A job still pending or processing is a 409: wait for it
    to finish (GET /detect/jobs/{job_id}, or the WebSocket) and export then."""
    request = detection_pb2.ExportDetectionsRequest(format=_FORMATS[format], job_id=str(job_id))
    return await _download(upstream, request, settings.export_deadline_seconds)


@router.get(
    "/history/export",
    summary="The caller's detections, filtered as /detect/history, as COCO, YOLO or CSV",
    response_class=StreamingResponse,
    responses={**_RESPONSES, **error_responses(422)},
)
async def export_history(
    format: FormatQuery,
    upstream: ResultsReadUpstream,
    settings: SettingsDep,
    filters: HistoryFilterQuery,
) -> StreamingResponse:
    """Every matching detection, newest first, however many: the file is written and sent a
    page at a time, never held whole."""
    request = detection_pb2.ExportDetectionsRequest(
        format=_FORMATS[format], **filters.request_fields()
    )
    return await _download(upstream, request, settings.export_deadline_seconds)
