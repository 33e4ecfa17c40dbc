"""Scoring a batch job against ground-truth labels (ADR 0054) end to end: the client library
and the real `objectvision jobs evaluate` console script against the running stack
(tests/conftest.py's `stack`), nothing mocked. A job scored against its own YOLO export is
perfect; against coco8's real labels it counts every labelled object; a file that is no labels
is refused with the API's 422. The best F1 and each class's threshold for it come back, and
the command prints the suggested thresholds as `--class-confidence` options to paste. The
confusion matrix's cells come back too (its own export: the diagonal only), and the command
lists the first 10 mistakes, the cells off the diagonal.
client/tests/test_evaluation.py checks the requests and their parsing against a stand-in
gateway.
"""

import io
import os
import shlex
import uuid
import zipfile
from pathlib import Path

import pytest

from objectvision_client import Client, Confusion, ObjectVisionError
from objectvision_devstack.api_users import PASSWORD, fresh_network
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared"))
COCO8 = SHARED / "images" / "coco8"
IMAGES = sorted((COCO8 / "images" / "val").glob("*.jpg"))
LABELS = sorted((COCO8 / "labels" / "val").glob("*.txt"))
JOB_WITHIN_SECONDS = 240.0
CONFUSIONS_SHOWN = 10


def _confusion_rows(block: str) -> tuple[list[tuple[str, str, int]], str | None]:
    """The Confusions block's rows as (labelled, detected, count), and its "(+N more)" line.
    Class names hold spaces ("potted plant", "(nothing)"), so the DETECTED column is cut
    where its header starts (every column is padded to its widest cell, the header's too)."""
    title, header, *lines = block.splitlines()
    assert title == "Confusions" and header.split() == ["LABELLED", "DETECTED", "COUNT"]
    more = lines.pop() if lines and lines[-1].startswith("(+") else None
    detected = header.index("DETECTED")
    rows = []
    for line in lines:
        names, count = line.rsplit(maxsplit=1)
        rows.append((names[:detected].strip(), names[detected:].strip(), int(count)))
    return rows, more


def _coco8_labels_zip(path: Path) -> Path:
    """coco8's own val labels, as a dataset ships them: labels/<image stem>.txt, COCO's 80
    class indexes (the model's, so no data.yaml is needed)."""
    with zipfile.ZipFile(path, "w") as archive:
        for label in LABELS:
            archive.write(label, f"labels/{label.name}")
    return path


@pytest.mark.slow
def test_a_batch_job_is_evaluated_against_its_own_export_and_coco8s_labels(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    assert len(IMAGES) == len(LABELS) == 4
    email = f"cli-evaluate-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network(), timeout=120) as client:
        client.signup(email, PASSWORD, "Evaluator")
        client.login(email, PASSWORD)
        job = client.wait_for_job(client.submit_batch(IMAGES).job_id, timeout=JOB_WITHIN_SECONDS)
        assert job.status == "completed", job
        detected = sum((job.class_counts or {}).values())
        assert detected > 0

        # Its own YOLO export as the ground truth: every detection matches its own box.
        export = io.BytesIO()
        client.export(export, format="yolo", job_id=job.job_id)
        own = client.evaluate_job(job.job_id, export.getvalue())
        assert (own.job_id, own.labels_format, own.images) == (job.job_id, "yolo", 4)
        assert own.ground_truth == own.detections == detected
        assert own.map50_95 >= 0.99 and own.map50 == pytest.approx(1.0)
        assert (own.precision, own.recall) == (1.0, 1.0)
        assert own.unmatched_label_count == 0 and own.unknown_classes == ()
        assert {row.class_name for row in own.classes} == set(job.class_counts or {})
        # Every detection correct: F1 1 at the lowest score kept, for every class.
        assert own.f1 == pytest.approx(1.0) and own.f1_confidence is not None
        assert all(row.f1 == pytest.approx(1.0) for row in own.classes)
        assert set(own.suggested_class_confidence) == set(job.class_counts or {})
        # Every detection is its own label: the confusion matrix is its diagonal.
        assert own.confusions and all(cell.actual == cell.predicted for cell in own.confusions)
        assert sum(cell.count for cell in own.confusions) == detected

        # coco8's real labels: every labelled object counted, the job's detections scored.
        real = _coco8_labels_zip(tmp_path / "coco8-val-labels.zip")
        scored = client.evaluate_job(job.job_id, real)
        lines = sum(
            1 for label in LABELS for line in label.read_text().splitlines() if line.strip()
        )
        assert scored.ground_truth == lines
        assert scored.detections == detected
        assert 0 < scored.map50 <= 1 and 0 <= scored.map50_95 <= scored.map50
        assert scored.images == 4 and scored.images_without_labels == 0
        assert scored.f1 is not None and 0 < scored.f1 <= 1
        assert scored.f1_confidence is not None and scored.suggested_class_confidence
        assert all(0 < value <= 1 for value in scored.suggested_class_confidence.values())
        # Every labelled object in one cell, every detection in one.
        assert sum(cell.count for cell in scored.confusions if cell.actual) == lines
        assert sum(cell.count for cell in scored.confusions if cell.predicted) == detected

        # No labels at all: the API's 422 with a message.
        garbage = tmp_path / "notes.txt"
        garbage.write_bytes(b"these are not labels\x00\x01")
        with pytest.raises(ObjectVisionError) as refused:
            client.evaluate_job(job.job_id, garbage)
        assert refused.value.status == 422 and refused.value.message

    cli = CommandLine(stack.gateway_url, tmp_path_factory.mktemp("xdg-evaluator"))
    cli.run("login", "--email", email, "--password", PASSWORD)
    shown = cli.run("jobs", "evaluate", job.job_id, str(real))
    # The Confusions block is there only when some cell is off the diagonal.
    summary, table, *confusions, suggested = shown.stdout.split("\n\n")
    assert f"Job {job.job_id}: yolov8n, 4 images scored against yolo labels" in summary
    assert f"mAP50 {scored.map50:.3f}" in summary
    *_, best, by_size = summary.splitlines()
    assert best.startswith(f"Best F1 {scored.f1:.3f} at confidence ")
    assert by_size.startswith("mAP50-95 by size: small ") and ", large " in by_size
    header, *rows = table.splitlines()
    assert header.split() == [
        *["CLASS", "GROUND", "TRUTH", "DETECTIONS", "AP50-95", "AP50", "P", "R", "F1", "CONF"]
    ]
    assert len(rows) == len(scored.classes)
    answer = cli.json("jobs", "evaluate", job.job_id, str(real))
    assert answer["ground_truth"] == lines
    assert tuple(Confusion.from_json(cell) for cell in answer["confusions"]) == scored.confusions
    # The Confusions block lists the answer's cells off the diagonal, in its order, the first
    # 10, "(nothing)" for null, and says how many more there are.
    mistakes = [
        (cell["actual"] or "(nothing)", cell["predicted"] or "(nothing)", cell["count"])
        for cell in answer["confusions"]
        if cell["actual"] != cell["predicted"]
    ]
    if mistakes:
        (block,) = confusions
        listed, more = _confusion_rows(block)
        assert listed == mistakes[:CONFUSIONS_SHOWN]
        left_out = len(mistakes) - CONFUSIONS_SHOWN
        assert more == (f"(+{left_out} more)" if left_out > 0 else None)
    else:
        assert confusions == []
    # The Suggested line, split as a shell would, is `--class-confidence CLASS=X` per class:
    # the very thresholds of the answer's `suggested_class_confidence`.
    assert suggested.startswith("Suggested: ") and suggested.endswith("\n")
    words = shlex.split(suggested.removeprefix("Suggested: "))
    assert words[::2] == ["--class-confidence"] * len(answer["suggested_class_confidence"])
    pasted = {
        name: float(value) for name, _, value in (word.rpartition("=") for word in words[1::2])
    }
    assert pasted == answer["suggested_class_confidence"] == scored.suggested_class_confidence
    # --curve adds the answer's curve: each threshold that changes what is kept, P, R and F1.
    shown = cli.run("jobs", "evaluate", job.job_id, str(real), "--curve")
    title, _, *points = shown.stdout.split("\n\n")[-1].splitlines()
    assert title == "Curve (every class)" and answer["curve"]
    assert [line.split()[:4] for line in points] == [
        [f"{p['confidence']:.2f}", *(f"{p[key]:.3f}" for key in ("precision", "recall", "f1"))]
        for p in answer["curve"]
    ]
    # A job compared with itself: the same scores on both sides, no difference anywhere.
    compared = cli.run("jobs", "compare", job.job_id, job.job_id, str(real))
    header, table = compared.stdout.split("\n\n")
    assert header.splitlines()[0] == f"A: job {job.job_id} (yolov8n, {detected} detections)"
    _, *rows = table.splitlines()
    assert rows and all(row.split()[-1] in ("0.000", "-") for row in rows), table
    assert f"{scored.map50_95:.3f}" in rows[0]
    failed = cli.run("jobs", "evaluate", job.job_id, str(garbage), expect=1)
    assert "(HTTP 422" in failed.stderr
