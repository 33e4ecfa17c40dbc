"""The export writers (detection_service.exports.formats) on records built here: what the end-
to-end tests (tests/test_exports.py) cannot reach cheaply through the API: output that leaves
page by page, an annotation spool that outgrows memory, spreadsheet formulas in filenames,
and classes a stored result has that the model does not.
"""

import csv
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from pycocotools.coco import COCO

from detection_service.exports.formats import (
    SPOOL_MEMORY_BYTES,
    CocoWriter,
    CsvWriter,
    YoloWriter,
    yolo_line,
)
from detection_service.history.service import DetectionRecord
from detection_service.pipeline.types import DetectedObject
from objectvision_inference.class_names import COCO_CLASS_NAMES as COCO_CLASSES

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _record(
    filename: str, objects: list[DetectedObject], metadata: dict[str, str] | None = None
) -> DetectionRecord:
    return DetectionRecord(
        id=uuid.uuid4(),
        status="completed",
        job_id=None,
        filename=filename,
        width=640,
        height=480,
        objects=objects,
        timings={},
        created_at=NOW,
        updated_at=NOW,
        metadata=metadata or {},
    )


def _object(n: int, class_id: int = 0, class_name: str = "person") -> DetectedObject:
    x = float(n % 500)
    return DetectedObject(class_id, class_name, 0.5, x, 10.25, x + 100.5, 200.75)


def test_each_page_of_a_yolo_zip_leaves_as_it_is_written() -> None:
    writer = YoloWriter(model_classes=COCO_CLASSES, created_at=NOW)
    pages = [[_record(f"page{p}-{i}.jpg", [_object(i)]) for i in range(3)] for p in range(3)]
    out = [writer.start()]
    for page in pages:
        written = writer.add(page)
        # Every label file of the page is in this page's bytes, not held for the end.
        for record in page:
            assert Path(record.filename).stem.encode() in written
        out.append(written)
    out.extend(writer.finish())
    writer.close()

    archive = zipfile.ZipFile(io.BytesIO(b"".join(out)))
    assert archive.testzip() is None
    labels = sorted(name for name in archive.namelist() if name.startswith("labels/"))
    assert len(labels) == 9
    assert archive.read("labels/page1-2.txt").decode() == yolo_line(_object(2), 640, 480) + "\n"


def test_coco_annotations_beyond_the_memory_spool_still_follow_their_images(
    tmp_path: Path,
) -> None:
    writer = CocoWriter(model_classes=COCO_CLASSES, created_at=NOW)
    out = [writer.start()]
    per_image, images = 1000, 80
    for page in range(4):
        out.append(
            writer.add(
                [
                    _record(f"{page}-{i}.jpg", [_object(n) for n in range(per_image)])
                    for i in range(20)
                ]
            )
        )
    out.extend(writer.finish())
    writer.close()
    body = b"".join(out)
    annotations = body.split(b'"annotations":[', 1)[1].split(b'],"categories"', 1)[0]
    assert len(annotations) > SPOOL_MEMORY_BYTES  # more than the spool keeps in memory

    path = tmp_path / "big.json"
    path.write_bytes(body)
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == images
    assert len(coco.getAnnIds()) == images * per_image
    assert all(len(coco.getAnnIds(imgIds=[i])) == per_image for i in coco.getImgIds())


def test_csv_text_cells_a_spreadsheet_would_run_are_defused() -> None:
    writer = CsvWriter()
    body = writer.start() + writer.add([_record('=HYPERLINK("http://x")', [_object(1)])])
    (row,) = list(csv.DictReader(io.StringIO(body.decode())))
    assert row["filename"] == '\'=HYPERLINK("http://x")'
    assert row["class_name"] == "person"


def test_a_class_the_model_does_not_know_is_still_listed() -> None:
    writer = CocoWriter(model_classes=COCO_CLASSES, created_at=NOW)
    custom = _object(1, class_id=90, class_name="forklift")
    body = writer.start() + writer.add([_record("yard.jpg", [custom])]) + b"".join(writer.finish())
    writer.close()
    categories = {c["id"]: c["name"] for c in json.loads(body)["categories"]}
    assert categories[90] == "forklift"
    assert [categories[i] for i in range(len(COCO_CLASSES))] == list(COCO_CLASSES)


def test_every_format_carries_each_images_metadata() -> None:
    """COCO's image entries, the CSV's last column and the YOLO index: as JSON with sorted
    keys, values as text (a formula-like value stays inside the JSON)."""
    tagged = _record("gate.jpg", [_object(1)], {"shift": "=night", "camera": "north-gate"})
    plain = _record("plain.jpg", [_object(2)])
    as_json = '{"camera":"north-gate","shift":"=night"}'

    coco = CocoWriter(model_classes=COCO_CLASSES, created_at=NOW)
    body = json.loads(coco.start() + coco.add([tagged, plain]) + b"".join(coco.finish()))
    assert [image["metadata"] for image in body["images"]] == [
        {"camera": "north-gate", "shift": "=night"},
        {},
    ]

    table = CsvWriter()
    rows = list(csv.DictReader(io.StringIO((table.start() + table.add([tagged, plain])).decode())))
    assert [row["metadata"] for row in rows] == [as_json, ""]

    yolo = YoloWriter(model_classes=COCO_CLASSES, created_at=NOW)
    archive = yolo.start() + yolo.add([tagged, plain]) + b"".join(yolo.finish())
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        index = list(csv.DictReader(io.StringIO(opened.read("images.csv").decode())))
    assert [row["metadata"] for row in index] == [as_json, ""]
