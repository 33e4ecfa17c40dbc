"""Scoring a finished batch job against ground-truth labels (ADR 0054) as the client library
and `objectvision jobs evaluate` send it and read the answer: one multipart file field
`labels`, named as the file is (or, for bytes, by what they hold), the same bytes again when
a refused request is retried; the scores read into `JobEvaluation` with null scores as None;
the command printing the scores, the best F1 and its threshold, a per-class table, the suggested
per-class thresholds as `--class-confidence` options that `detect` and `batch` accept, the
confusion matrix's mistakes (at most 10, "(nothing)" for a miss or an unlabelled detection), and
warnings for labels that did not line up with the job, or the API's JSON.

The answers come from a real HTTP server on a local port that stands where the gateway would,
answers what each test scripts and keeps every request.
"""

import asyncio
import io
import json
import shlex
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from objectvision_client import (
    AsyncClient,
    ClassEvaluation,
    Client,
    Confusion,
    CurvePoint,
    JobEvaluation,
    ObjectVisionError,
    SizeEvaluation,
    point_at,
)
from objectvision_client.cli import (
    EXIT_FAILED,
    EXIT_OK,
    build_parser,
    evaluation_confusions,
    evaluation_suggestion,
    evaluation_summary,
    evaluation_table,
    main,
)
from objectvision_client.retry import RetryPolicy
from objectvision_devstack.scripted_gateway import ScriptedGateway

JOB_ID = "6b1f3c2a-0000-4000-8000-000000000054"
EVALUATION = f"/api/v1/detect/jobs/{JOB_ID}/evaluation"
QUICK_RETRIES = RetryPolicy(max_attempts=3, backoff_base=0.01)
SCORED = {
    "job_id": JOB_ID,
    "model": "yolov8n",
    "labels_format": "yolo",
    "min_confidence": 0.25,
    "images": 4,
    "images_without_labels": 1,
    "unmatched_labels": ["extra.txt"],
    "unmatched_label_count": 1,
    "unknown_classes": ["widget"],
    "ground_truth": 17,
    "detections": 20,
    "map50_95": 0.61,
    "map50": 0.8,
    "map75": 0.62,
    "precision": 0.7,
    "recall": 0.65,
    # The operating point; the thresholds as the service sends them, the suggested ones
    # rounded down to 4 decimals.
    "f1": 0.72,
    "f1_confidence": 0.41,
    "suggested_class_confidence": {"person": 0.4123},
    "classes": [
        {
            "class_id": 0,
            "class_name": "person",
            "ground_truth": 10,
            "detections": 12,
            "ap50_95": 0.55,
            "ap50": 0.8,
            "precision": 0.7,
            "recall": 0.6,
            "f1": 0.8,
            "f1_confidence": 0.41237,
            "curve": [
                {"confidence": 0.25, "precision": 0.5, "recall": 0.6, "f1": 0.5454},
                {"confidence": 0.42, "precision": 1.0, "recall": 0.6667, "f1": 0.8},
                {"confidence": 0.8, "precision": 1.0, "recall": 0.1, "f1": 0.1818},
            ],
        },
        # Detected but never labelled: no AP and no recall.
        {
            "class_id": 5,
            "class_name": "bus",
            "ground_truth": 0,
            "detections": 2,
            "ap50_95": None,
            "ap50": None,
            "precision": 0.0,
            "recall": None,
            "f1": None,
            "f1_confidence": None,
        },
        # Labelled but never detected: no precision.
        {
            "class_id": 58,
            "class_name": "potted plant",
            "ground_truth": 7,
            "detections": 0,
            "ap50_95": 0.0,
            "ap50": 0.0,
            "precision": None,
            "recall": 0.0,
            "f1": None,
            "f1_confidence": None,
        },
    ],
    # The confusion matrix's non-zero cells, most frequent first: the diagonal (found right)
    # is no mistake; null is a miss (predicted) or an unlabelled detection (actual).
    "confusions": [
        {"actual": "person", "predicted": "person", "count": 6},
        {"actual": "potted plant", "predicted": None, "count": 7},
        {"actual": "person", "predicted": None, "count": 3},
        {"actual": None, "predicted": "person", "count": 2},
        {"actual": None, "predicted": "bus", "count": 2},
        {"actual": "person", "predicted": "bus", "count": 1},
    ],
    "curve": [
        {"confidence": 0.25, "precision": 0.7, "recall": 0.65, "f1": 0.674},
        {"confidence": 0.42, "precision": 0.8, "recall": 0.6, "f1": 0.6857},
    ],
    "sizes": [
        {"size": "small", "ground_truth": 0, "map50_95": None},
        {"size": "medium", "ground_truth": 5, "map50_95": 0.412},
        {"size": "large", "ground_truth": 12, "map50_95": 0.7},
    ],
    # A field this version does not know: kept in `raw` and in --json.
    "iou_thresholds": [0.5, 0.95],
}
# COCO JSON: the server tells it from a zip by the content, whatever the name.
COCO = json.dumps({"images": [], "annotations": [], "categories": []}).encode()


def _refused(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message, "request_id": "req-54"}}


def _yolo_zip() -> bytes:
    """A zip as `export(format="yolo")` lays it out: labels/<image stem>.txt and data.yaml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("labels/000000000049.txt", "0 0.5 0.5 0.2 0.4\n")
        archive.writestr("data.yaml", "names:\n  0: person\n")
    return buffer.getvalue()


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def files(self) -> dict[str, tuple[str, str, bytes]]:
        """The multipart form's files by field name: (filename, content type, bytes)."""
        content_type = self.headers["content-type"]
        assert content_type.startswith("multipart/form-data"), self.headers
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
        )
        files = {}
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes) and part.get_filename() is not None
            files[name] = (str(part.get_filename()), part.get_content_type(), payload)
        return files


class Gateway(ScriptedGateway[Sent]):
    """Answers each `METHOD path` with its scripted JSON answers in turn; keeps every request."""


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        headers = {name.lower(): value for name, value in request.headers.items()}
        sent = Sent(
            request.command, request.path.split("?")[0], headers, request.rfile.read(length)
        )
        status, body = stand_in.answer(sent)
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        if status == 503:
            request.send_header("Retry-After", "0")
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


# The library


def test_a_labels_file_is_sent_as_the_labels_field_and_the_evaluation_is_read(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    labels = tmp_path / "ground-truth.zip"
    labels.write_bytes(_yolo_zip())
    with Client(gateway.url, api_key="ov_test") as client:
        evaluation = client.evaluate_job(JOB_ID, labels)

    (sent,) = gateway.sent
    assert (sent.method, sent.path, sent.headers["x-api-key"]) == ("POST", EVALUATION, "ov_test")
    assert sent.files() == {"labels": ("ground-truth.zip", "application/zip", labels.read_bytes())}
    assert isinstance(evaluation, JobEvaluation)
    assert (evaluation.job_id, evaluation.model, evaluation.labels_format) == (
        JOB_ID,
        "yolov8n",
        "yolo",
    )
    assert (evaluation.map50_95, evaluation.map50, evaluation.map75) == (0.61, 0.8, 0.62)
    assert (evaluation.precision, evaluation.recall) == (0.7, 0.65)
    assert (evaluation.ground_truth, evaluation.detections, evaluation.images) == (17, 20, 4)
    assert evaluation.unmatched_labels == ("extra.txt",)
    assert evaluation.unknown_classes == ("widget",)
    assert evaluation.classes[1] == ClassEvaluation(
        class_id=5, class_name="bus", ground_truth=0, detections=2, precision=0.0
    )
    assert evaluation.classes[1].ap50_95 is None and evaluation.classes[1].recall is None
    assert evaluation.classes[2].precision is None
    assert (evaluation.f1, evaluation.f1_confidence) == (0.72, 0.41)
    assert evaluation.suggested_class_confidence == {"person": 0.4123}
    assert (evaluation.classes[0].f1, evaluation.classes[0].f1_confidence) == (0.8, 0.41237)
    assert evaluation.classes[2].f1 is None and evaluation.classes[2].f1_confidence is None
    assert evaluation.confusions == (
        Confusion(actual="person", predicted="person", count=6),
        Confusion(actual="potted plant", predicted=None, count=7),
        Confusion(actual="person", predicted=None, count=3),
        Confusion(actual=None, predicted="person", count=2),
        Confusion(actual=None, predicted="bus", count=2),
        Confusion(actual="person", predicted="bus", count=1),
    )
    assert evaluation.raw == SCORED


def test_an_evaluation_without_an_operating_point_reads_as_none() -> None:
    """No correct detection (or a server from before the operating point): None and no
    suggested thresholds, not an unexpected response."""
    operating_point = {"f1", "f1_confidence", "suggested_class_confidence"}
    body = {key: value for key, value in SCORED.items() if key not in operating_point}
    rows: list[dict[str, Any]] = SCORED["classes"]  # type: ignore[assignment]
    body["classes"] = [
        {key: value for key, value in row.items() if key not in operating_point} for row in rows
    ]
    evaluation = JobEvaluation.from_json(body)
    assert (evaluation.f1, evaluation.f1_confidence) == (None, None)
    assert evaluation.suggested_class_confidence == {}
    assert all(row.f1 is None and row.f1_confidence is None for row in evaluation.classes)
    nulls = JobEvaluation.from_json({**SCORED, "f1": None, "f1_confidence": None})
    assert (nulls.f1, nulls.f1_confidence) == (None, None)


def test_an_evaluation_without_confusions_reads_as_none_and_prints_no_block() -> None:
    """A server from before the confusion matrix sends no `confusions`: an empty tuple, not an
    unexpected response, and no Confusions block, as when every cell is on the diagonal."""
    body = {key: value for key, value in SCORED.items() if key != "confusions"}
    older = JobEvaluation.from_json(body)
    assert older.confusions == ()
    assert evaluation_confusions(older) is None
    right = [{"actual": "person", "predicted": "person", "count": 6}]
    assert evaluation_confusions(JobEvaluation.from_json({**SCORED, "confusions": right})) is None


def test_jobs_compare_shows_two_evaluations_side_by_side_with_the_difference(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "6b1f3c2a-0000-4000-8000-0000000000b2"
    int8 = {
        **SCORED,
        "job_id": other,
        "model": "yolov8n-int8",
        "detections": 18,
        "map50_95": 0.59,
        "map50": 0.8,
        "precision": None,
        "classes": [
            {**SCORED["classes"][0], "ap50_95": 0.6},
            {**SCORED["classes"][2], "ap50_95": 0.05},
        ],
    }
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    gateway.answers(f"POST /api/v1/detect/jobs/{other}/evaluation", (200, int8))
    labels = tmp_path / "labels.zip"
    labels.write_bytes(_yolo_zip())
    code = main(["--api-url", gateway.url, "jobs", "compare", JOB_ID, other, str(labels)])
    assert code == EXIT_OK

    header, table = capsys.readouterr().out.split("\n\n")
    assert header.splitlines() == [
        f"A: job {JOB_ID} (yolov8n, 20 detections)",
        f"B: job {other} (yolov8n-int8, 18 detections)",
        "Scored against the same yolo labels: 17 objects in 4 images",
    ]
    rows = {line[:22].strip(): line[22:].split() for line in table.splitlines()[1:]}
    assert rows["mAP50-95"] == ["0.610", "0.590", "-0.020"]
    assert rows["mAP50"] == ["0.800", "0.800", "0.000"]
    assert rows["Precision"] == ["0.700", "-", "-"]
    assert rows["mAP50-95 small"] == ["-", "-", "-"]
    assert rows["mAP50-95 large"] == ["0.700", "0.700", "0.000"]
    # Each class of either, in class order; one the other has none of is "-".
    assert rows["person AP50-95"] == ["0.550", "0.600", "+0.050"]
    assert rows["bus AP50-95"] == ["-", "-", "-"]
    assert rows["potted plant AP50-95"] == ["0.000", "0.050", "+0.050"]
    assert [sent.path for sent in gateway.sent] == [
        EVALUATION,
        f"/api/v1/detect/jobs/{other}/evaluation",
    ]

    # Other pictures: the numbers would not compare.
    gateway.answers(f"POST /api/v1/detect/jobs/{other}/evaluation", (200, {**int8, "images": 3}))
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    code = main(["--api-url", gateway.url, "jobs", "compare", JOB_ID, other, str(labels)])
    assert code == EXIT_FAILED
    assert "scored on different pictures" in capsys.readouterr().err


def test_the_map_by_size_is_read_and_an_older_server_sends_none() -> None:
    small, medium, large = JobEvaluation.from_json(SCORED).sizes
    assert small == SizeEvaluation(size="small", ground_truth=0, map50_95=None)
    assert (medium.size, medium.ground_truth, medium.map50_95) == ("medium", 5, 0.412)
    assert large.map50_95 == 0.7
    older = JobEvaluation.from_json({k: v for k, v in SCORED.items() if k != "sizes"})
    assert older.sizes == ()
    assert "by size" not in evaluation_summary(older)


def test_the_curve_is_read_and_says_what_each_threshold_keeps() -> None:
    evaluation = JobEvaluation.from_json(SCORED)
    person, bus, plant = evaluation.classes
    assert [point.confidence for point in person.curve] == [0.25, 0.42, 0.8]
    assert bus.curve == plant.curve == ()  # none sent: nothing both labelled and detected
    assert evaluation.curve[1] == CurvePoint(confidence=0.42, precision=0.8, recall=0.6, f1=0.6857)
    # A point holds until the next one's threshold.
    assert point_at(person.curve, 0.5) == person.curve[1]
    assert point_at(person.curve, 0.8) == person.curve[2]
    assert point_at(person.curve, 0.25) == person.curve[0]
    assert point_at(person.curve, 0.2) is None, "below what the job kept"
    assert point_at((), 0.5) is None
    older = JobEvaluation.from_json({k: v for k, v in SCORED.items() if k != "curve"})
    assert older.curve == ()


def test_jobs_evaluate_prints_the_curve_of_every_class_or_of_one(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {EVALUATION}", *[(200, SCORED)] * 3)
    labels = tmp_path / "labels.zip"
    labels.write_bytes(_yolo_zip())

    assert _cli(gateway, JOB_ID, str(labels), "--curve") == EXIT_OK
    curve = capsys.readouterr().out.split("\n\n")[-1]
    assert [line.split() for line in curve.splitlines()] == [
        ["Curve", "(every", "class)"],
        ["CONF", "P", "R", "F1"],
        ["0.25", "0.700", "0.650", "0.674"],
        ["0.42", "0.800", "0.600", "0.686", "best", "F1"],
    ]

    assert _cli(gateway, JOB_ID, str(labels), "--curve", "person") == EXIT_OK
    curve = capsys.readouterr().out.split("\n\n")[-1]
    assert [line.split() for line in curve.splitlines()] == [
        ["Curve", "(person)"],
        ["CONF", "P", "R", "F1"],
        ["0.25", "0.500", "0.600", "0.545"],
        ["0.42", "1.000", "0.667", "0.800", "best", "F1"],
        ["0.80", "1.000", "0.100", "0.182"],
    ]

    assert _cli(gateway, JOB_ID, str(labels), "--curve", "dog") == EXIT_FAILED
    assert "no class 'dog' in this evaluation; with a curve: person" in capsys.readouterr().err


def test_a_confusion_cell_is_frozen_and_needs_both_classes() -> None:
    cell = Confusion.from_json({"actual": "dog", "predicted": "cat", "count": 1})
    with pytest.raises(ValueError, match="frozen"):
        cell.count = 2  # type: ignore[misc]
    # null is a class of its own (nothing on that side), so it must be sent, not assumed.
    with pytest.raises(ValueError, match="predicted"):
        Confusion.from_json({"actual": "dog", "count": 1})


@pytest.mark.parametrize(
    ("labels", "named", "content_type"),
    [(_yolo_zip(), "labels.zip", "application/zip"), (COCO, "labels.json", "application/json")],
)
def test_evaluating_with_bytes_names_the_file_by_what_they_hold(
    gateway: Gateway, labels: bytes, named: str, content_type: str
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, {**SCORED, "labels_format": "coco"}))

    async def evaluate() -> JobEvaluation:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.evaluate_job(JOB_ID, labels)

    assert asyncio.run(evaluate()).labels_format == "coco"
    (sent,) = gateway.sent
    assert sent.files() == {"labels": (named, content_type, labels)}


def test_a_refused_evaluation_is_retried_with_the_same_labels(gateway: Gateway) -> None:
    gateway.answers(f"POST {EVALUATION}", _refused(503, "unavailable", "try again"), (200, SCORED))
    with Client(gateway.url, api_key="ov_test", retry=QUICK_RETRIES) as client:
        assert client.evaluate_job(JOB_ID, COCO).map50 == 0.8
    first, second = gateway.sent
    assert first.files() == second.files() == {"labels": ("labels.json", "application/json", COCO)}


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            422,
            "invalid_argument",
            "the labels are neither a zip of YOLO label files nor a COCO JSON file",
        ),
        (422, "validation_error", "labels/000000000049.txt line 2: expected 5 numbers"),
        (409, "failed_precondition", "the job is still processing (2 of 4 images done)"),
        (404, "not_found", "job not found"),
    ],
)
def test_a_refused_evaluation_raises_the_apis_error(
    gateway: Gateway, status: int, code: str, message: str
) -> None:
    gateway.answers(f"POST {EVALUATION}", _refused(status, code, message))
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as err:
        client.evaluate_job(JOB_ID, b"not labels at all")
    assert (err.value.status, err.value.code, err.value.message) == (status, code, message)
    assert err.value.request_id == "req-54"


def test_an_evaluation_without_its_scores_is_an_unexpected_response(gateway: Gateway) -> None:
    body = {key: value for key, value in SCORED.items() if key != "map50"}
    gateway.answers(f"POST {EVALUATION}", (200, body))
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as err:
        client.evaluate_job(JOB_ID, COCO)
    assert err.value.code == "unexpected_response"
    assert "map50" in err.value.message


# The command line


@pytest.fixture
def api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")


def _cli(gateway: Gateway, *args: str) -> int:
    return main(["--api-url", gateway.url, "jobs", "evaluate", *args])


def test_jobs_evaluate_prints_the_scores_the_classes_and_warnings(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    labels = tmp_path / "labels.zip"
    labels.write_bytes(_yolo_zip())
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_OK

    printed = capsys.readouterr()
    summary, table, confusions, suggested = printed.out.split("\n\n")
    assert summary.splitlines() == [
        f"Job {JOB_ID}: yolov8n, 4 images scored against yolo labels, detections at "
        "confidence 0.25 or more",
        "Objects: 17 labelled, 20 detected",
        "mAP50-95 0.610  mAP50 0.800  mAP75 0.620",
        "Precision 0.700  Recall 0.650  (IoU 0.5)",
        "Best F1 0.720 at confidence 0.41 or more",
        "mAP50-95 by size: small -, medium 0.412 (5), large 0.700 (12)",
    ]
    header, *rows = table.splitlines()
    assert header.split() == [
        *["CLASS", "GROUND", "TRUTH", "DETECTIONS", "AP50-95", "AP50", "P", "R", "F1", "CONF"]
    ]
    # CONF rounded down to 4 decimals, as the suggested thresholds are.
    assert [row.split() for row in rows] == [
        ["person", "10", "12", "0.550", "0.800", "0.700", "0.600", "0.800", "0.4123"],
        ["bus", "0", "2", "-", "-", "0.000", "-", "-", "-"],
        ["potted", "plant", "7", "0", "0.000", "0.000", "-", "0.000", "-", "-"],
    ]
    # The mistakes only, in the answer's order: the diagonal cell (person found right) left out.
    assert confusions.splitlines() == [
        "Confusions",
        "LABELLED      DETECTED   COUNT",
        "potted plant  (nothing)      7",
        "person        (nothing)      3",
        "(nothing)     person         2",
        "(nothing)     bus            2",
        "person        bus            1",
    ]
    assert suggested == "Suggested: --class-confidence person=0.4123\n"
    assert printed.err.splitlines() == [
        "Warning: 1 image of the job had no labels: scored as holding no object",
        "Warning: 1 label entry named no image of the job: extra.txt",
        "Warning: classes the model does not have, not scored: widget",
    ]
    assert gateway.sent[0].files()["labels"][0] == "labels.zip"


def test_jobs_evaluate_says_how_many_unmatched_labels_were_not_listed(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = [f"extra-{index}.txt" for index in range(20)]
    answer = {
        **SCORED,
        "images_without_labels": 0,
        "unknown_classes": [],
        "unmatched_labels": listed,
        "unmatched_label_count": 23,
        "precision": None,
        "recall": None,
        "f1": None,
        "f1_confidence": None,
        "suggested_class_confidence": {},
        "classes": [],
        "confusions": [],
        "sizes": [],
    }
    gateway.answers(f"POST {EVALUATION}", (200, answer))
    labels = tmp_path / "coco.json"
    labels.write_bytes(COCO)
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_OK

    printed = capsys.readouterr()
    summary, table = printed.out.split("\n\n")
    # No operating point: no F1 line and no suggested thresholds.
    assert summary.splitlines()[-1] == "Precision -  Recall -  (IoU 0.5)"
    assert table.splitlines()[-1].split() == ["(none)", *"-" * 8]
    assert "F1 " not in summary and "Suggested" not in printed.out
    # No cell at all: no Confusions block either.
    assert "Confusions" not in printed.out
    assert printed.err.splitlines() == [
        f"Warning: 23 label entries named no image of the job: {', '.join(listed)} and 3 more"
    ]


def test_jobs_evaluate_json_prints_the_apis_answer(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    labels = tmp_path / "coco.json"
    labels.write_bytes(COCO)
    assert _cli(gateway, JOB_ID, str(labels), "--json") == EXIT_OK
    printed = capsys.readouterr()
    assert json.loads(printed.out) == SCORED
    assert printed.err == ""


def test_jobs_evaluate_refused_prints_the_apis_message_and_fails(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "the labels are neither a zip of YOLO label files nor a COCO JSON file"
    gateway.answers(f"POST {EVALUATION}", _refused(422, "invalid_argument", message))
    labels = tmp_path / "notes.txt"
    labels.write_text("not labels at all")
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out == ""
    assert message in printed.err and "HTTP 422 invalid_argument" in printed.err


@pytest.mark.parametrize("which", ["folder", "missing"])
def test_jobs_evaluate_without_a_labels_file_fails_before_anything_is_sent(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    labels = tmp_path if which == "folder" else tmp_path / "missing.zip"
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_FAILED
    assert str(labels) in capsys.readouterr().err
    assert gateway.sent == []


def test_jobs_evaluate_lists_at_most_10_mistakes_and_says_how_many_more(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Thirteen mistakes among diagonal cells: the first 10 mistakes in the answer's order
    (the diagonal skipped, not counted towards the 10), then how many were left out; no
    Suggested line in this answer, so the block ends stdout."""
    mistakes = [
        {"actual": f"class-{index}", "predicted": f"class-{index + 1}", "count": 20 - index}
        for index in range(10)
    ] + [
        {"actual": None, "predicted": "dog", "count": 2},
        {"actual": "cat", "predicted": None, "count": 1},
        {"actual": None, "predicted": "cat", "count": 1},
    ]
    cells = [
        {"actual": "person", "predicted": "person", "count": 30},
        *mistakes[:5],
        {"actual": "dog", "predicted": "dog", "count": 9},
        *mistakes[5:],
    ]
    answer = {**SCORED, "confusions": cells, "suggested_class_confidence": {}}
    gateway.answers(f"POST {EVALUATION}", (200, answer))
    labels = tmp_path / "coco.json"
    labels.write_bytes(COCO)
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_OK

    _, _, confusions = capsys.readouterr().out.split("\n\n")
    title, header, *rows, more = confusions.splitlines()
    assert (title, header.split(), more) == (
        "Confusions",
        ["LABELLED", "DETECTED", "COUNT"],
        "(+3 more)",
    )
    assert [row.split() for row in rows] == [
        [str(cell["actual"]), str(cell["predicted"]), str(cell["count"])] for cell in mistakes[:10]
    ]
    evaluation = JobEvaluation.from_json({**answer, "confusions": mistakes[10:]})
    assert evaluation_confusions(evaluation) == "\n".join(
        [
            "Confusions",
            "LABELLED   DETECTED   COUNT",
            "(nothing)  dog            2",
            "cat        (nothing)      1",
            "(nothing)  cat            1",
        ]
    )
    # Exactly 10 mistakes: all shown, nothing said about more.
    exactly = evaluation_confusions(
        JobEvaluation.from_json({**answer, "confusions": mistakes[:10]})
    )
    assert exactly is not None and "more" not in exactly and len(exactly.splitlines()) == 12


def test_the_evaluation_table_shows_none_for_no_class() -> None:
    evaluation = JobEvaluation.from_json({**SCORED, "classes": []})
    assert evaluation_table(evaluation).splitlines()[1].split() == ["(none)", *"-" * 8]


def test_the_suggested_thresholds_paste_into_detect_and_batch_as_they_are() -> None:
    """Each class one `--class-confidence CLASS=X`, in the answer's order, a class name with a
    space quoted for the shell: split as a shell would, `detect` and `batch` read back the
    very thresholds the server suggested."""
    suggested = {"person": 0.4123, "traffic light": 0.3311, "dog": 0.25, "cat": 1.0}
    evaluation = JobEvaluation.from_json({**SCORED, "suggested_class_confidence": suggested})
    line = evaluation_suggestion(evaluation)
    assert line == (
        "Suggested: --class-confidence person=0.4123 --class-confidence 'traffic light=0.3311' "
        "--class-confidence dog=0.25 --class-confidence cat=1"
    )
    options = shlex.split(line.removeprefix("Suggested: "))
    for command in (["detect", "image.jpg"], ["batch", "images"]):
        args = build_parser().parse_args([*command, *options])
        assert dict(args.class_confidence) == suggested
    no_suggestion = JobEvaluation.from_json({**SCORED, "suggested_class_confidence": {}})
    assert evaluation_suggestion(no_suggestion) is None


def _tracking(mota: float, idf1: float, switches: int) -> dict[str, Any]:
    return {
        "mota": mota,
        "motp": 0.871,
        "idf1": idf1,
        "id_precision": 0.9,
        "id_recall": 0.85,
        "id_switches": switches,
        "fragmentations": 1,
        "ground_truth_tracks": 5,
        "mostly_tracked": 3,
        "partially_tracked": 1,
        "mostly_lost": 1,
        "false_positives": 4,
        "misses": 6,
    }


TRACKED_VIDEO = {
    **SCORED,
    "job_kind": "video",
    "labels_format": "mot",
    "images": 40,
    "images_without_labels": 2,
    "frames_outside_labels": 9,
    "unmatched_labels": [],
    "unmatched_label_count": 0,
    "unknown_classes": [],
    "classes": [
        {**SCORED["classes"][0], "tracking": _tracking(0.75, 0.8, 2)},
        SCORED["classes"][1],
    ],
    "tracking": _tracking(0.7, 0.78, 3),
}


def test_a_tracked_video_jobs_evaluation_reads_and_prints_its_tracking(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, TRACKED_VIDEO))
    labels = tmp_path / "gt.txt"
    labels.write_text("1,1,10,20,30,40,1,1,1\n")
    assert _cli(gateway, JOB_ID, str(labels)) == EXIT_OK

    printed = capsys.readouterr()
    summary, table, *_ = printed.out.split("\n\n")
    lines = summary.splitlines()
    assert lines[0].startswith(f"Job {JOB_ID}: yolov8n, 40 frames scored against mot labels")
    assert lines[-2:] == [
        "Tracking: MOTA 0.700  IDF1 0.780  MOTP 0.871  ID switches 3  fragmentations 1",
        "Identities: 5 labelled, 3 mostly tracked, 1 partly, 1 mostly lost (6 missed, 4 false)",
    ]
    header, person, bus = table.splitlines()
    assert header.split()[-2:] == ["MOTA", "IDF1"]
    assert person.split()[-2:] == ["0.750", "0.800"]
    assert bus.split()[-2:] == ["-", "-"], "a class without labelled identities has none"
    assert printed.err.splitlines() == [
        "Warning: 2 frames of the job had no labels: scored as holding no object",
        "Warning: 9 sampled frames fell outside the frames the labels cover: not scored",
    ]
    assert gateway.sent[0].files()["labels"][0] == "gt.txt"

    read = Client(gateway.url, api_key="ov_test").evaluate_job(JOB_ID, labels)
    assert read.job_kind == "video" and read.unit == "frame"
    assert read.tracking is not None and read.tracking.id_switches == 3
    assert read.classes[0].tracking is not None and read.classes[1].tracking is None


def test_a_batch_jobs_evaluation_has_no_tracking() -> None:
    evaluation = JobEvaluation.model_validate(SCORED)
    assert (evaluation.job_kind, evaluation.unit, evaluation.tracking) == ("batch", "image", None)
    assert "MOTA" not in evaluation_table(evaluation)


def test_jobs_compare_sets_two_tracked_videos_tracking_side_by_side(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "6b1f3c2a-0000-4000-8000-0000000000b3"
    longer_lost = {**TRACKED_VIDEO, "job_id": other, "tracking": _tracking(0.74, 0.86, 1)}
    gateway.answers(f"POST {EVALUATION}", (200, TRACKED_VIDEO))
    gateway.answers(f"POST /api/v1/detect/jobs/{other}/evaluation", (200, longer_lost))
    labels = tmp_path / "gt.txt"
    labels.write_text("1,1,10,20,30,40\n")
    code = main(["--api-url", gateway.url, "jobs", "compare", JOB_ID, other, str(labels)])
    assert code == EXIT_OK

    header, table = capsys.readouterr().out.split("\n\n")
    assert header.splitlines()[-1] == "Scored against the same mot labels: 17 objects in 40 frames"
    # The label, then A, B and B - A.
    rows = {" ".join(line.split()[:-3]): line.split()[-3:] for line in table.splitlines()[1:]}
    assert rows["MOTA"] == ["0.700", "0.740", "+0.040"]
    assert rows["IDF1"] == ["0.780", "0.860", "+0.080"]
    assert rows["ID switches"] == ["3", "1", "-2"]
    assert rows["Mostly lost"] == ["1", "1", "0"]


def test_jobs_compare_of_batch_jobs_has_no_tracking_rows(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {EVALUATION}", (200, SCORED))
    labels = tmp_path / "labels.zip"
    labels.write_bytes(_yolo_zip())
    assert main(["--api-url", gateway.url, "jobs", "compare", JOB_ID, JOB_ID, str(labels)]) == 0
    assert "MOTA" not in capsys.readouterr().out
