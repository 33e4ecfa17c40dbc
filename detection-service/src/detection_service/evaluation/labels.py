"""Ground-truth labels as callers keep them: a zip of YOLO label files, a COCO JSON file, or
for a video MOTChallenge's gt.txt (alone, or in a zip as CVAT's "MOT 1.1" export has it).

Why parsed here rather than by supervision's `DetectionDataset.from_yolo`/`from_coco`: those
read a dataset folder and open every image for its size, while the job's images are stored
with their sizes already; and a caller's file must be refused with the entry and line at
fault, never with a traceback. Pydantic checks COCO's structure; a YOLO line is a class and
four numbers (or a segmentation polygon, whose bounding box is taken, as Ultralytics does).

A zip is read within fixed bounds (entries, unpacked bytes, lines), so a small zip that
unpacks to gigabytes is refused before it is unpacked; and only the label files that name an
upload of the job are read, so the work is bounded by the job, not by the dataset it came
from (the others are listed as unmatched, unread).
"""

import io
import math
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import yaml
from pydantic import BaseModel, ValidationError

from objectvision_common.errors import InvalidArgument

LabelsFormat = Literal["yolo", "coco", "mot"]
YOLO: LabelsFormat = "yolo"
COCO: LabelsFormat = "coco"
MOT: LabelsFormat = "mot"

# What one zip of labels may hold: entries, bytes once unpacked (label and class-name files
# only: images or anything else in the zip are skipped unread), and lines of one label file.
MAX_ZIP_ENTRIES = 50_000
MAX_UNPACKED_BYTES = 128 * 1024 * 1024
MAX_LINES_PER_FILE = 10_000
# Files in a YOLO zip that name its classes, by base name, in the order they are looked for.
CLASS_NAME_FILES = ("data.yaml", "data.yml", "classes.txt", "obj.names")
# MOTChallenge's ground truth, and the class names CVAT writes beside it (one a line; a
# row's class is its 1-based line number).
MOT_FILE = "gt.txt"
MOT_NAMES_FILE = "labels.txt"
# MOTChallenge's pedestrian class: without a labels.txt, rows of it (or without a class, -1
# as MOT15 writes) are the model's "person"; MOTChallenge scores no other class either.
MOT_PEDESTRIAN = 1
MOT_PERSON = "person"
# Rows of one gt.txt (MOT17's longest sequence has about 110,000).
MAX_MOT_ROWS = 1_000_000
# A video's frames are named by number in YOLO and COCO labels (CVAT's `frame_000042`): the
# last digits of the name, counted from 0 as the job's frames are. At most 9 of them: no video
# has a billion frames, and a name of thousands of digits is not read as a number.
_FRAME_NUMBER = re.compile(r"(?<!\d)(\d{1,9})$")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class LabelBox:
    """One labelled object: the model's class id and its box, as the labels give it
    (fractions of the image for YOLO, pixels for COCO)."""

    class_id: int
    x1: float
    y1: float
    x2: float
    y2: float
    # The labelled object's identity across a video's frames (MOT's id); None elsewhere.
    track_id: int | None = None


@dataclass(frozen=True)
class ImageLabels:
    """The labelled objects of one image, and the name the labels call the image by."""

    name: str
    boxes: tuple[LabelBox, ...]
    # YOLO's boxes are fractions of the image's width and height; COCO's are pixels.
    normalised: bool
    # COCO may say the size of the image that was labelled; a different upload size means the
    # boxes belong to another rendition of the picture.
    size: tuple[int, int] | None = None

    def in_pixels(self, width: int, height: int) -> list[LabelBox]:
        if not self.normalised:
            return list(self.boxes)
        return [
            LabelBox(
                box.class_id,
                box.x1 * width,
                box.y1 * height,
                box.x2 * width,
                box.y2 * height,
                box.track_id,
            )
            for box in self.boxes
        ]


@dataclass(frozen=True)
class GroundTruth:
    format: LabelsFormat
    # By image key (`image_key`): what a job's upload is matched to.
    images: Mapping[str, ImageLabels]
    # Class names in the labels that the model lacks; their boxes were left out.
    unknown_classes: tuple[str, ...]
    # Label files of a zip that name no upload of the job: listed, never read.
    unread: tuple[str, ...] = ()

    def of(self, filename: str) -> ImageLabels | None:
        return self.images.get(image_key(filename))


@dataclass(frozen=True)
class VideoGroundTruth:
    """A video's labels by frame number (from 0, as the job's frames are counted)."""

    format: LabelsFormat
    frames: Mapping[int, ImageLabels]
    unknown_classes: tuple[str, ...]
    # The labelled objects carry their identity across frames (MOT), so tracking can be scored.
    tracked: bool
    # Entries whose name gives no frame number: listed, not scored.
    unnumbered: tuple[str, ...] = ()

    def span(self) -> tuple[int, int]:
        """The first and the last frame the labels cover: frames outside were not labelled,
        rather than labelled empty."""
        return min(self.frames), max(self.frames)


def image_key(name: str) -> str:
    """How a label entry and an upload find each other: the base name without its extension
    (`labels/val/000049.txt` labels `000049.jpg`), whatever folders either was in."""
    return PurePosixPath(name.replace("\\", "/")).stem


def parse_labels(
    data: bytes, model_classes: Sequence[str], uploads: Collection[str] | None = None
) -> GroundTruth:
    """The labels in `data`, told apart by content: a zip is YOLO, a JSON object COCO.
    `uploads`: the `image_key`s of the images they are for; a zip's label files for others
    are not read (None: every one is)."""
    if data.startswith(_ZIP_MAGIC):
        archive, entries = _zip_entries(data)
        with archive:
            if _mot_entries(entries) is not None:
                raise InvalidArgument(
                    f"the labels zip holds MOTChallenge ground truth ({MOT_FILE}), which scores"
                    " a video job's frames; this is a batch job of images"
                )
            return _parse_yolo_zip(archive, entries, model_classes, uploads)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_coco(data, model_classes)
    raise InvalidArgument("the labels are neither a zip of YOLO label files nor a COCO JSON file")


def parse_video_labels(data: bytes, model_classes: Sequence[str]) -> VideoGroundTruth:
    """A video's labels in `data`, told apart by content: MOTChallenge's gt.txt, alone or in a
    zip; a zip of YOLO label files or a COCO JSON file whose entries are named by frame
    (`frame_000042.txt`, `frame_000042.jpg`: CVAT's exports of a video)."""
    if data.startswith(_ZIP_MAGIC):
        archive, entries = _zip_entries(data)
        with archive:
            found = _mot_entries(entries)
            if found is None:
                return _by_frame(_parse_yolo_zip(archive, entries, model_classes, None))
            truth, names = found
            label_names = None if names is None else _mot_names(_text_of(archive, names))
            return _parse_mot(_text_of(archive, truth), truth.filename, label_names, model_classes)
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return _by_frame(_parse_coco(data, model_classes))
    if stripped[:1].isdigit():
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidArgument(f"the labels ({MOT_FILE}) are not UTF-8 text") from error
        first_line = text.lstrip().partition("\n")[0]
        if "," not in first_line:
            raise InvalidArgument(
                "the labels are one text file without commas, as a single YOLO label file is:"
                " send YOLO labels as a zip of files named by frame (frame_000042.txt), or"
                f" MOTChallenge's comma-separated {MOT_FILE}"
            )
        return _parse_mot(text, MOT_FILE, None, model_classes)
    raise InvalidArgument(
        f"the labels are neither MOTChallenge's {MOT_FILE} (or a zip holding it), a zip of YOLO"
        " label files nor a COCO JSON file"
    )


def frame_number(name: str) -> int | None:
    """The frame a YOLO or COCO entry of a video's labels names: its name's last digits
    (`frame_000042` is frame 42); None where it ends in none."""
    match = _FRAME_NUMBER.search(image_key(name))
    return int(match.group(1)) if match else None


def _by_frame(truth: GroundTruth) -> VideoGroundTruth:
    frames: dict[int, ImageLabels] = {}
    unnumbered: list[str] = list(truth.unread)
    for image in truth.images.values():
        number = frame_number(image.name)
        if number is None:
            unnumbered.append(image.name)
        elif number in frames:
            raise InvalidArgument(
                f"the labels name frame {number} twice: '{frames[number].name}' and"
                f" '{image.name}' (a video's entries are matched to frames by the number their"
                " name ends in)"
            )
        else:
            frames[number] = image
    if not frames:
        raise InvalidArgument(
            "no label entry names a frame: a video's YOLO or COCO entries are named by frame"
            " number, counted from 0 (frame_000042.txt, or file_name frame_000042.jpg)"
        )
    return VideoGroundTruth(
        truth.format,
        frames,
        truth.unknown_classes,
        tracked=False,
        unnumbered=tuple(sorted(unnumbered)),
    )


# MOTChallenge


def _zip_entries(data: bytes) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as error:
        raise InvalidArgument(f"the labels zip cannot be read: {error}") from error
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InvalidArgument(
            f"the labels zip has {len(entries)} entries; at most {MAX_ZIP_ENTRIES} are read"
        )
    return archive, entries


def _mot_entries(
    entries: Sequence[zipfile.ZipInfo],
) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo | None] | None:
    """The zip's shallowest gt.txt and the labels.txt beside it (if any); None without one."""
    found = sorted(
        (e for e in entries if not _hidden(e) and PurePosixPath(e.filename).name == MOT_FILE),
        key=lambda entry: len(PurePosixPath(entry.filename).parts),
    )
    if not found:
        return None
    truth = found[0]
    beside = str(PurePosixPath(truth.filename).with_name(MOT_NAMES_FILE))
    names = next((entry for entry in entries if entry.filename == beside), None)
    for entry in (truth, names):
        if entry is not None and entry.file_size > MAX_UNPACKED_BYTES:
            raise InvalidArgument(
                f"{entry.filename} in the labels zip unpacks to {entry.file_size} bytes; at"
                f" most {MAX_UNPACKED_BYTES} are read"
            )
    return truth, names


def _mot_names(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _parse_mot(
    text: str, name: str, label_names: list[str] | None, model_classes: Sequence[str]
) -> VideoGroundTruth:
    """MOTChallenge's `frame, id, left, top, width, height[, considered, class, visibility]`
    rows (frames from 1, boxes in pixels). A row marked not considered (0) is left out, as
    MOTChallenge's evaluation leaves it, but its frame counts as labelled. A class is the
    1-based line of labels.txt when there is one; without it, MOTChallenge's pedestrians
    (class 1, or -1: none given) are the model's person, and other classes are left out."""
    lines = text.splitlines()
    if len(lines) > MAX_MOT_ROWS:
        raise InvalidArgument(f"{name} has {len(lines)} lines; at most {MAX_MOT_ROWS}")
    classes = _ClassMap(model_classes)
    named_ids = None if label_names is None else [classes.id_of(label) for label in label_names]
    person = next(
        (index for index, label in enumerate(model_classes) if label.casefold() == MOT_PERSON),
        None,
    )
    boxes: dict[int, list[LabelBox]] = {}
    seen: set[tuple[int, int, int]] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number} of {name}"
        frame, track, box, considered, label = _mot_row(line, where)
        frame_boxes = boxes.setdefault(frame - 1, [])
        if not considered:
            continue
        if named_ids is not None:
            if not 1 <= label <= len(named_ids):
                raise InvalidArgument(
                    f"{where}: class {label} is not one of {MOT_NAMES_FILE}'s lines 1 to"
                    f" {len(named_ids)}"
                )
            class_id = named_ids[label - 1]
        else:
            class_id = person if label in (-1, MOT_PEDESTRIAN) else None
        if class_id is None:
            continue
        if (frame, class_id, track) in seen:
            raise InvalidArgument(
                f"{where}: object {track} is labelled twice in frame {frame}; an id names one"
                " object of a frame"
            )
        seen.add((frame, class_id, track))
        frame_boxes.append(LabelBox(class_id, *box, track_id=track))
    if not boxes:
        raise InvalidArgument(f"{name} has no row: expected one line per labelled object")
    frames = {
        frame: ImageLabels(f"frame {frame + 1} of {name}", tuple(found), normalised=False)
        for frame, found in boxes.items()
    }
    return VideoGroundTruth(MOT, frames, tuple(sorted(classes.unknown)), tracked=True)


def _mot_row(
    line: str, where: str
) -> tuple[int, int, tuple[float, float, float, float], bool, int]:
    """(frame, id, corners in pixels, considered, class) of one gt.txt row."""
    tokens = [token.strip() for token in line.split(",")]
    if len(tokens) < 6:
        raise InvalidArgument(
            f"{where}: expected `frame, id, left, top, width, height` (then optionally"
            f" considered, class, visibility), got {len(tokens)} values"
        )
    try:
        values = [float(token) for token in tokens]
    except ValueError as error:
        raise InvalidArgument(f"{where}: every value must be a number") from error
    if not all(math.isfinite(value) for value in values):
        raise InvalidArgument(f"{where}: every value must be a finite number")
    frame, track = values[0], values[1]
    if not (frame.is_integer() and frame >= 1):
        raise InvalidArgument(f"{where}: the frame is a whole number from 1, got {tokens[0]}")
    if not track.is_integer():
        raise InvalidArgument(f"{where}: the id must be a whole number, got {tokens[1]}")
    left, top, width, height = values[2:6]
    if width <= 0 or height <= 0:
        raise InvalidArgument(f"{where}: width and height must be above 0")
    considered = len(values) < 7 or values[6] != 0
    label = values[7] if len(values) > 7 else -1.0
    if not label.is_integer():
        raise InvalidArgument(f"{where}: the class must be a whole number, got {tokens[7]}")
    return int(frame), int(track), (left, top, left + width, top + height), considered, int(label)


class _ClassMap:
    """Label class names to the model's class ids (ignoring case), noting the unknown ones."""

    def __init__(self, model_classes: Sequence[str]) -> None:
        self._ids = {name.casefold(): class_id for class_id, name in enumerate(model_classes)}
        self.unknown: set[str] = set()

    def id_of(self, name: str) -> int | None:
        class_id = self._ids.get(name.strip().casefold())
        if class_id is None:
            self.unknown.add(name)
        return class_id


def _ground_truth(
    labels_format: LabelsFormat,
    images: Iterable[ImageLabels],
    classes: _ClassMap,
    unread: tuple[str, ...] = (),
) -> GroundTruth:
    by_key: dict[str, ImageLabels] = {}
    for image in images:
        key = image_key(image.name)
        if key in by_key:
            raise InvalidArgument(
                f"the labels name two images '{by_key[key].name}' and '{image.name}' alike;"
                " uploads are matched by file name without extension, so each must be unique"
            )
        by_key[key] = image
    return GroundTruth(labels_format, by_key, tuple(sorted(classes.unknown)), unread)


# YOLO


def _parse_yolo_zip(
    archive: zipfile.ZipFile,
    entries: Sequence[zipfile.ZipInfo],
    model_classes: Sequence[str],
    uploads: Collection[str] | None,
) -> GroundTruth:
    """YOLO labels from an open zip whose central directory `_zip_entries` read and bounded."""
    label_files = [entry for entry in entries if _is_label_file(entry)]
    if not label_files:
        raise InvalidArgument("the labels zip holds no .txt label file")
    unread = tuple(
        entry.filename
        for entry in label_files
        if uploads is not None and image_key(entry.filename) not in uploads
    )
    wanted = [
        entry
        for entry in entries
        if _names_classes(entry) or (_is_label_file(entry) and entry.filename not in unread)
    ]
    unpacked = sum(entry.file_size for entry in wanted)
    if unpacked > MAX_UNPACKED_BYTES:
        raise InvalidArgument(
            f"the labels zip's label files unpack to {unpacked} bytes; at most"
            f" {MAX_UNPACKED_BYTES} are read"
        )
    texts = {entry.filename: _text_of(archive, entry) for entry in wanted}
    names = _yolo_class_names(texts)
    classes = _ClassMap(model_classes)
    ids = _yolo_class_ids(names, model_classes, classes)
    images = [
        _yolo_image(name, text, ids, names is not None)
        for name, text in texts.items()
        if PurePosixPath(name).name not in CLASS_NAME_FILES
    ]
    return _ground_truth(YOLO, images, classes, unread)


def _hidden(entry: zipfile.ZipInfo) -> bool:
    path = PurePosixPath(entry.filename)
    return entry.is_dir() or any(part.startswith((".", "__MACOSX")) for part in path.parts)


def _is_label_file(entry: zipfile.ZipInfo) -> bool:
    path = PurePosixPath(entry.filename)
    return not _hidden(entry) and path.suffix == ".txt" and path.name not in CLASS_NAME_FILES


def _names_classes(entry: zipfile.ZipInfo) -> bool:
    return not _hidden(entry) and PurePosixPath(entry.filename).name in CLASS_NAME_FILES


def _text_of(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> str:
    try:
        # ZipExtFile stops at the entry's declared size, which the bound above summed.
        return archive.read(entry).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidArgument(f"{entry.filename} in the labels zip is not UTF-8 text") from error
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as error:
        # RuntimeError: encrypted; NotImplementedError: a compression zipfile lacks.
        raise InvalidArgument(
            f"{entry.filename} in the labels zip cannot be read: {error}"
        ) from error


def _yolo_class_names(texts: Mapping[str, str]) -> list[str] | None:
    """The dataset's class names, from the shallowest data.yaml or classes.txt; None when
    the zip has neither, and label classes are then the model's own ids."""
    found = sorted(
        (name for name in texts if PurePosixPath(name).name in CLASS_NAME_FILES),
        key=lambda name: (
            len(PurePosixPath(name).parts),
            CLASS_NAME_FILES.index(PurePosixPath(name).name),
        ),
    )
    if not found:
        return None
    name = found[0]
    if PurePosixPath(name).name in ("classes.txt", "obj.names"):
        return [line.strip() for line in texts[name].splitlines() if line.strip()]
    try:
        document = yaml.safe_load(texts[name])
    except yaml.YAMLError as error:
        raise InvalidArgument(f"{name} in the labels zip is not valid YAML: {error}") from error
    names = document.get("names") if isinstance(document, dict) else None
    if isinstance(names, dict) and all(isinstance(key, int) for key in names):
        if sorted(names) != list(range(len(names))):
            raise InvalidArgument(f"{name}: `names` must number the classes 0, 1, 2, ...")
        names = [names[index] for index in range(len(names))]
    if not (isinstance(names, list) and all(isinstance(item, str) for item in names)):
        raise InvalidArgument(
            f"{name} in the labels zip has no `names`: a list of class names, or a mapping of"
            " class numbers to names"
        )
    return names


def _yolo_class_ids(
    names: list[str] | None, model_classes: Sequence[str], classes: _ClassMap
) -> list[int | None]:
    """For each label class number, the model's class id (None: a class it lacks)."""
    if names is None:
        return list(range(len(model_classes)))
    return [classes.id_of(name) for name in names]


def _yolo_image(name: str, text: str, class_ids: Sequence[int | None], named: bool) -> ImageLabels:
    lines = text.splitlines()
    if len(lines) > MAX_LINES_PER_FILE:
        raise InvalidArgument(f"{name} has {len(lines)} lines; at most {MAX_LINES_PER_FILE}")
    boxes: list[LabelBox] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number} of {name}"
        label, fractions = _yolo_line(line, where)
        if not 0 <= label < len(class_ids):
            source = "the names of the zip's data.yaml or classes.txt" if named else "the model's"
            raise InvalidArgument(
                f"{where}: class {label} is not one of {source} 0 to {len(class_ids) - 1}"
                + ("" if named else "; add a data.yaml or classes.txt naming your classes")
            )
        class_id = class_ids[label]
        if class_id is not None:
            boxes.append(LabelBox(class_id, *fractions))
    return ImageLabels(name, tuple(boxes), normalised=True)


def _yolo_line(line: str, where: str) -> tuple[int, tuple[float, float, float, float]]:
    """(class number, box corners as fractions) of `class x_center y_center width height`, or
    of a segmentation line `class x1 y1 x2 y2 ...` (three or more points: its bounding box)."""
    tokens = line.split()
    if len(tokens) < 5 or (len(tokens) > 5 and (len(tokens) % 2 == 0 or len(tokens) < 7)):
        raise InvalidArgument(
            f"{where}: expected `class x_center y_center width height` (or a class and three or"
            f" more x y points), got {len(tokens)} values"
        )
    try:
        label = float(tokens[0])
        values = [float(token) for token in tokens[1:]]
    except ValueError as error:
        raise InvalidArgument(f"{where}: every value must be a number") from error
    if not label.is_integer():
        raise InvalidArgument(f"{where}: the class must be a whole number, got {tokens[0]}")
    if not all(math.isfinite(value) and 0 <= value <= 1 for value in values):
        raise InvalidArgument(
            f"{where}: coordinates are fractions of the image's width and height, from 0 to 1"
        )
    if len(values) == 4:
        x_center, y_center, width, height = values
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"{where}: width and height must be above 0")
        corners = (
            max(x_center - width / 2, 0.0),
            max(y_center - height / 2, 0.0),
            min(x_center + width / 2, 1.0),
            min(y_center + height / 2, 1.0),
        )
    else:
        xs, ys = values[0::2], values[1::2]
        corners = (min(xs), min(ys), max(xs), max(ys))
        if corners[2] <= corners[0] or corners[3] <= corners[1]:
            raise InvalidArgument(f"{where}: the polygon encloses no area")
    return int(label), corners


# COCO


class _CocoImage(BaseModel):
    id: int | str
    file_name: str
    width: int | None = None
    height: int | None = None


class _CocoAnnotation(BaseModel):
    image_id: int | str
    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: int = 0


class _CocoCategory(BaseModel):
    id: int
    name: str


class _CocoFile(BaseModel):
    images: list[_CocoImage]
    annotations: list[_CocoAnnotation]
    categories: list[_CocoCategory]


def _parse_coco(data: bytes, model_classes: Sequence[str]) -> GroundTruth:
    try:
        document = _CocoFile.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"].startswith("json"):
            raise InvalidArgument(f"the labels are not valid JSON: {first['msg']}") from error
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidArgument(
            f"the labels are not COCO detection JSON: {where}: {first['msg']}"
            f" ({error.error_count()} problem{'s' if error.error_count() > 1 else ''} in all)"
        ) from error
    classes = _ClassMap(model_classes)
    category_ids = {category.id: classes.id_of(category.name) for category in document.categories}
    boxes: dict[int | str, list[LabelBox]] = {image.id: [] for image in document.images}
    for index, annotation in enumerate(document.annotations):
        where = f"annotations[{index}]"
        if annotation.image_id not in boxes:
            raise InvalidArgument(f"{where}: image_id {annotation.image_id} is not in `images`")
        if annotation.category_id not in category_ids:
            raise InvalidArgument(
                f"{where}: category_id {annotation.category_id} is not in `categories`"
            )
        x, y, width, height = annotation.bbox
        if not all(math.isfinite(value) for value in annotation.bbox) or width <= 0 or height <= 0:
            raise InvalidArgument(
                f"{where}: bbox is [x, y, width, height] in pixels, width and height above 0"
            )
        class_id = category_ids[annotation.category_id]
        # A crowd region marks many objects at once; COCO's own evaluation ignores detections
        # in it rather than scoring it as one object, which these metrics cannot: left out.
        if class_id is not None and not annotation.iscrowd:
            boxes[annotation.image_id].append(LabelBox(class_id, x, y, x + width, y + height))
    images = [
        ImageLabels(
            image.file_name,
            tuple(boxes[image.id]),
            normalised=False,
            size=(image.width, image.height) if image.width and image.height else None,
        )
        for image in document.images
    ]
    return _ground_truth(COCO, images, classes)
