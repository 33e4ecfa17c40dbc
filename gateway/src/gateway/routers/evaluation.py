"""Scoring a finished job against the caller's ground-truth labels (ADR 0054, 0056).

The gateway bounds the file and passes it through; the detection service reads the labels,
matches them to the job's images and scores the stored detections, so a caller gets the same
numbers from REST, gRPC, the client and the console.
"""

import uuid
from typing import Annotated

from fastapi import File, UploadFile

from gateway.auth.dependencies import ResultsReadUpstream, signed_in_router
from gateway.dependencies import SettingsDep
from gateway.errors import ApiError, error_responses
from gateway.routers import detect
from gateway.schemas.evaluation import JobEvaluationOut
from objectvision.v1 import detection_pb2
from objectvision_common.limits import MAX_LABELS_BYTES

# Job routes take small JSON bodies except this one's labels file: the body limit of every
# path under it (gateway.app.body_limits).
JOBS_PREFIX = f"{detect.DETECT_PREFIX}/jobs/"

router = signed_in_router(detect.DETECT_PREFIX, "evaluation")

LabelsFile = Annotated[
    UploadFile,
    File(
        description="A zip of YOLO label files (`<image stem>.txt`, one `class x_center"
        " y_center width height` line per object as fractions of the image; class numbers"
        " name the classes of a data.yaml or classes.txt in the zip, else the model's), or a"
        " COCO detection JSON file (boxes in pixels, categories matched to the model's class"
        " names). Told apart by content. A label names an upload by file name without"
        " extension. For a video job: those formats with entries named by frame number from 0"
        " (`frame_000042.txt`, CVAT's export of a video), or MOTChallenge's gt.txt (`frame, id,"
        " left, top, width, height[, considered, class, visibility]`, frames from 1), alone"
        " or in a zip with a labels.txt naming its classes (CVAT's MOT 1.1)."
    ),
]


@router.post(
    "/jobs/{job_id:uuid}/evaluation",
    summary="Score a finished job's detections (and a video's tracking) against ground truth",
    # 400: a body that is not multipart (the form parser's refusal).
    responses=error_responses(400, 404, 409, 413, 422),
)
async def evaluate_job(
    job_id: uuid.UUID, labels: LabelsFile, upstream: ResultsReadUpstream, settings: SettingsDep
) -> JobEvaluationOut:
    """COCO's mAP50-95, mAP50 and mAP75, precision and recall at IoU 0.5, overall and per
    class, of the job's stored detections. Labels of classes the job did not ask for, or
    standing outside its regions, are left out as its detections were. A video job's sampled
    frames are scored as images, those the labels cover; a tracked one against labels with
    identities (MOT) gets MOTA, IDF1 and identity switches too. A job still running is a
    409, a labels file that cannot be read a 422 (the message names the entry and line)."""
    if labels.size is not None and labels.size > MAX_LABELS_BYTES:
        raise ApiError(
            413,
            "payload_too_large",
            f"the labels file is {labels.size} bytes; at most {MAX_LABELS_BYTES} are accepted",
        )
    request = detection_pb2.EvaluateJobRequest(job_id=str(job_id), labels=await labels.read())
    scoring = upstream.with_deadline(settings.evaluation_deadline_seconds)
    return JobEvaluationOut.from_proto(await scoring.call(scoring.detection.EvaluateJob, request))
