"""The three export formats, each a writer fed one page of detection records at a time.

A writer returns the bytes each step adds (`start`, `add` per page, then `finish`, which
yields its tail in chunks) and never holds more than one page: whatever a format must place
after everything else (COCO's annotations after its images, the YOLO zip's index) goes to a
spooled temporary file that stays in memory while small and moves to disk when not. Writers
are synchronous and CPU-bound; `exports.service` calls them in a worker thread.

Every format says the same numbers: boxes in original-image pixels rounded to
PIXEL_DECIMALS (as the REST API answers them), scores to SCORE_DECIMALS. YOLO's normalised
values are computed from those rounded pixels and written with NORMALISED_DECIMALS, so
multiplying them back by the image size gives the same boxes to within half a unit of the
last written decimal times the image side (under 0.01 px for images up to 20,000 px).
"""

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO, Protocol

from detection_service.history.service import DetectionRecord
from detection_service.pipeline.types import DetectedObject

PIXEL_DECIMALS = 2
SCORE_DECIMALS = 4
NORMALISED_DECIMALS = 6
# A spool stays in memory up to this size, then becomes a file in the temporary directory.
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
READ_CHUNK_BYTES = 256 * 1024
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection);
# such text cells get a leading apostrophe, OWASP's advice.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "detection_id",
    "job_id",
    "filename",
    "image_width",
    "image_height",
    "created_at",
    "class_id",
    "class_name",
    "confidence",
    "x1",
    "y1",
    "x2",
    "y2",
    "width",
    "height",
    "metadata",
)
YOLO_INDEX_COLUMNS = ("label_file", "filename", "width", "height", "detection_id", "metadata")


@dataclass(frozen=True)
class PixelBox:
    """A box as every format writes it: corners in pixels, rounded once, here."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def of(cls, obj: DetectedObject) -> "PixelBox":
        return cls(
            round(obj.x1, PIXEL_DECIMALS),
            round(obj.y1, PIXEL_DECIMALS),
            round(obj.x2, PIXEL_DECIMALS),
            round(obj.y2, PIXEL_DECIMALS),
        )

    @property
    def width(self) -> float:
        return round(self.x2 - self.x1, PIXEL_DECIMALS)

    @property
    def height(self) -> float:
        return round(self.y2 - self.y1, PIXEL_DECIMALS)


class ExportWriter(Protocol):
    media_type: str
    extension: str

    def start(self) -> bytes: ...

    def add(self, records: Sequence[DetectionRecord]) -> bytes: ...

    def finish(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Categories:
    """The classes an export names: the producing model's, by id, plus any id a stored object
    carries that the model does not know (a result stored by an earlier model), under the
    name stored with it, so every annotation's class is listed."""

    def __init__(self, model_classes: Sequence[str]) -> None:
        self._names: dict[int, str] = dict(enumerate(model_classes))

    def see(self, obj: DetectedObject) -> None:
        self._names.setdefault(obj.class_id, obj.class_name)

    def items(self) -> list[tuple[int, str]]:
        return sorted(self._names.items())

    def dense(self) -> list[str]:
        """Names for ids 0..max, as files that list one name per line need; a gap (an id
        nothing names) is written as the id itself."""
        if not self._names:
            return []
        return [self._names.get(i, str(i)) for i in range(max(self._names) + 1)]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _metadata_cell(record: DetectionRecord) -> str:
    """A detection's metadata (ADR 0045) in one CSV cell: a JSON object with sorted keys, or
    nothing when it has none. It starts with `{`, so no spreadsheet runs it as a formula."""
    return _json(dict(sorted(record.metadata.items()))) if record.metadata else ""


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _spool() -> IO[bytes]:
    """A temporary file in memory until SPOOL_MEMORY_BYTES, on disk beyond; the writer that
    opens one closes it in its close()."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)


def _read_back(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(READ_CHUNK_BYTES):
        yield chunk


class CocoWriter:
    """COCO object detection JSON, as pycocotools and most training tools read it.

    Image ids and annotation ids count from 1 in export order; `category_id` is the model's
    class id (0-based, the same number as the API's `class_id` and YOLO's first column).
    Each annotation carries the model's `score`; `iscrowd` is 0 and `area` the box area
    (there are no masks, so `segmentation` is empty). Each image also carries its
    `detection_id`, the key back into the API, and its `metadata` (ADR 0045; `{}` for none).
    Keys in order: info, licenses, images, annotations (spooled while the images stream),
    categories (last, so that every class an annotation used is listed).
    """

    media_type = "application/json"
    extension = "json"

    def __init__(self, *, model_classes: Sequence[str], created_at: datetime) -> None:
        self._categories = Categories(model_classes)
        self._created_at = created_at
        self._annotations = _spool()
        self._image_id = 0
        self._annotation_id = 0

    def start(self) -> bytes:
        info = {
            "description": "ObjectVision detections",
            "version": "1.0",
            "year": self._created_at.year,
            "contributor": "ObjectVision",
            "date_created": _iso(self._created_at),
        }
        return f'{{"info":{_json(info)},"licenses":[],"images":['.encode()

    def add(self, records: Sequence[DetectionRecord]) -> bytes:
        images: list[str] = []
        annotations: list[str] = []
        for record in records:
            self._image_id += 1
            images.append(
                _json(
                    {
                        "id": self._image_id,
                        "file_name": record.filename,
                        "width": record.width,
                        "height": record.height,
                        "detection_id": str(record.id),
                        "metadata": dict(sorted(record.metadata.items())),
                    }
                )
            )
            for obj in record.objects:
                self._categories.see(obj)
                self._annotation_id += 1
                box = PixelBox.of(obj)
                annotations.append(
                    _json(
                        {
                            "id": self._annotation_id,
                            "image_id": self._image_id,
                            "category_id": obj.class_id,
                            "bbox": [box.x1, box.y1, box.width, box.height],
                            "area": round(box.width * box.height, PIXEL_DECIMALS),
                            "score": round(obj.confidence, SCORE_DECIMALS),
                            "iscrowd": 0,
                            "segmentation": [],
                        }
                    )
                )
        if annotations:
            lead = "," if self._annotation_id > len(annotations) else ""
            self._annotations.write((lead + ",".join(annotations)).encode())
        if not images:
            return b""
        lead = "," if self._image_id > len(images) else ""
        return (lead + ",".join(images)).encode()

    def finish(self) -> Iterator[bytes]:
        yield b'],"annotations":['
        yield from _read_back(self._annotations)
        categories = [
            {"id": class_id, "name": name, "supercategory": ""}
            for class_id, name in self._categories.items()
        ]
        yield f'],"categories":{_json(categories)}}}\n'.encode()

    def close(self) -> None:
        self._annotations.close()


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


class CsvWriter:
    """One row per detected object (an image without objects has no row), header first.

    Text cells that a spreadsheet would run as a formula start with an apostrophe."""

    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    @staticmethod
    def _rows(rows: Sequence[Sequence[object]]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerows(rows)
        return text.getvalue().encode()

    def start(self) -> bytes:
        return self._rows([CSV_COLUMNS])

    def add(self, records: Sequence[DetectionRecord]) -> bytes:
        rows: list[Sequence[object]] = []
        for record in records:
            for obj in record.objects:
                box = PixelBox.of(obj)
                rows.append(
                    (
                        record.id,
                        record.job_id or "",
                        _csv_text(record.filename),
                        record.width,
                        record.height,
                        _iso(record.created_at),
                        obj.class_id,
                        _csv_text(obj.class_name),
                        round(obj.confidence, SCORE_DECIMALS),
                        box.x1,
                        box.y1,
                        box.x2,
                        box.y2,
                        box.width,
                        box.height,
                        _metadata_cell(record),
                    )
                )
        return self._rows(rows) if rows else b""

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        pass


class _ZipSink:
    """Where zipfile writes: collects bytes until the driver takes them. No tell() or
    seek(), so zipfile writes a streamable zip (sizes in data descriptors after each
    entry), which is what lets the archive leave page by page."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to release (zipfile never closes a file object it was handed)."""

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _yolo_value(value: float) -> str:
    return f"{value:.{NORMALISED_DECIMALS}f}"


def yolo_line(obj: DetectedObject, width: int, height: int) -> str:
    """`class x_center y_center width height`, each of the four divided by the image side."""
    box = PixelBox.of(obj)
    return " ".join(
        (
            str(obj.class_id),
            _yolo_value((box.x1 + box.x2) / 2 / width),
            _yolo_value((box.y1 + box.y2) / 2 / height),
            _yolo_value((box.x2 - box.x1) / width),
            _yolo_value((box.y2 - box.y1) / height),
        )
    )


class YoloWriter:
    """A zip of YOLO (Ultralytics / Darknet) labels.

    - `labels/<image stem>.txt`: one line per object, `class x_center y_center width
      height`, normalised by the image size; an image without objects gets an empty file
      (a background image, as YOLO expects).
    - `data.yaml` (`nc`, `names`) and `classes.txt` (one name per line): the model's classes.
    - `images.csv`: label file, original filename, width, height, detection id and metadata
      (JSON, empty for none); YOLO files do not say an image's size, and this is what turns
      them back into pixels.

    Two images with the same stem (bus.jpg twice, or bus.jpg and bus.png) would share a
    label file; the later ones get `_<first 8 hex digits of the detection id>` appended
    (compared case-insensitively, for file systems that ignore case).
    """

    media_type = "application/zip"
    extension = "zip"

    def __init__(self, *, model_classes: Sequence[str], created_at: datetime) -> None:
        self._categories = Categories(model_classes)
        self._stamp = created_at.timetuple()[:6]
        self._sink = _ZipSink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED)
        self._used: set[str] = set()
        self._index = _spool()

    def _entry(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    def _label_name(self, record: DetectionRecord) -> str:
        stem = PurePosixPath(record.filename).stem.strip() or str(record.id)
        for candidate in (stem, f"{stem}_{record.id.hex[:8]}", str(record.id)):
            if candidate.lower() not in self._used:
                self._used.add(candidate.lower())
                return f"labels/{candidate}.txt"
        raise AssertionError("detection ids are unique")

    def start(self) -> bytes:
        self._index.write(CsvWriter._rows([YOLO_INDEX_COLUMNS]))
        return b""

    def add(self, records: Sequence[DetectionRecord]) -> bytes:
        index: list[Sequence[object]] = []
        for record in records:
            name = self._label_name(record)
            lines = []
            for obj in record.objects:
                self._categories.see(obj)
                lines.append(yolo_line(obj, record.width, record.height) + "\n")
            self._zip.writestr(self._entry(name), "".join(lines))
            index.append(
                (
                    name,
                    _csv_text(record.filename),
                    record.width,
                    record.height,
                    record.id,
                    _metadata_cell(record),
                )
            )
        self._index.write(CsvWriter._rows(index))
        return self._sink.take()

    def finish(self) -> Iterator[bytes]:
        names = self._categories.dense()
        yaml_names = "".join(f"  {i}: {_json(name)}\n" for i, name in enumerate(names))
        self._zip.writestr(
            self._entry("data.yaml"),
            "# ObjectVision export: YOLO labels in labels/, image sizes in images.csv\n"
            f"nc: {len(names)}\nnames:\n{yaml_names}",
        )
        self._zip.writestr(self._entry("classes.txt"), "".join(f"{n}\n" for n in names))
        yield self._sink.take()
        with self._zip.open(self._entry("images.csv"), "w") as index:
            for chunk in _read_back(self._index):
                index.write(chunk)
                yield self._sink.take()
        self._zip.close()
        yield self._sink.take()

    def close(self) -> None:
        self._index.close()


FORMAT_NAMES = ("coco", "yolo", "csv")


def writer_for(name: str, *, model_classes: Sequence[str], created_at: datetime) -> ExportWriter:
    """The writer of a format by its name (FORMAT_NAMES)."""
    if name == "coco":
        return CocoWriter(model_classes=model_classes, created_at=created_at)
    if name == "yolo":
        return YoloWriter(model_classes=model_classes, created_at=created_at)
    if name == "csv":
        return CsvWriter()
    raise ValueError(f"unknown export format {name!r}; known: {', '.join(FORMAT_NAMES)}")
