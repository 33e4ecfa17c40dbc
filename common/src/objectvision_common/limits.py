"""Limits of the APIs that both sides of gRPC enforce, defined once.

The gateway refuses a REST request beyond them (422) before any call; detection-service
refuses a gRPC call beyond them (INVALID_ARGUMENT), since internal services call it directly.
Written twice, the two could drift apart and a request the gateway accepted would fail behind
it, or the other way round.
"""

import re
import unicodedata
from collections.abc import Mapping

from objectvision.v1 import common_pb2
from objectvision_common.display_text import undisplayable
from objectvision_common.errors import InvalidArgument

# History pages: what a request that names no limit gets, and the most one page holds.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
# An Idempotency-Key header (a batch job's), in characters.
MAX_IDEMPOTENCY_KEY_CHARS = 200
# Objects one image may be answered with, whatever the request asks.
MAX_DETECTIONS_LIMIT = 1000
# Share links (ADR 0048): days one lasts when none is asked and at most, and how many links
# of one detection may be active at once.
DEFAULT_SHARE_LINK_DAYS = 7
MAX_SHARE_LINK_DAYS = 30
MAX_ACTIVE_SHARE_LINKS = 10
# Classes one rendering of an image may pixelate (ADR 0049).
MAX_REDACTED_CLASSES = 100
# Classes one request may give a minimum score of their own (ADR 0050).
MAX_CLASS_CONFIDENCES = 100
# Tiled detection (ADR 0051): a tile's side in pixels, the share of it neighbours overlap, and
# how many tiles one image may be cut into (each is one more inference).
MIN_TILE_SIZE = 128
MAX_TILE_SIZE = 4096
DEFAULT_TILE_OVERLAP = 0.2
MAX_TILE_OVERLAP = 0.5
MAX_TILES_PER_IMAGE = 64
# Regions of interest one request may keep objects in, and the corners of each (ADR 0053).
MAX_REGIONS = 16
MAX_REGION_POINTS = 32
# A job's ground-truth labels file (ADR 0054), as sent: a zip of YOLO labels or COCO JSON.
MAX_LABELS_BYTES = 32 * 1024 * 1024


def checked_idempotency_key(value: str) -> str:
    """A job's or a stored Detect's idempotency key, trimmed; empty for none. Longer than
    MAX_IDEMPOTENCY_KEY_CHARS is InvalidArgument."""
    key = value.strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    return key


def page_bounds(page: common_pb2.Page, *, default: int, most: int) -> tuple[int, int]:
    """(limit, offset) of a requested page: limit 0 means `default`, and is capped at `most`;
    a negative one is InvalidArgument."""
    limit = page.limit or default
    if limit < 0 or page.offset < 0:
        raise InvalidArgument("page limit and offset must not be negative")
    return min(limit, most), page.offset


# Counting lines (ADR 0039) and zones (ADR 0042) one video job or stream may ask for, the
# points of a zone's polygon, and the length of a line's or zone's name.
MAX_COUNTING_LINES = 16
MAX_COUNTING_ZONES = 16
MAX_ZONE_POINTS = 32
MAX_COUNTING_NAME_CHARS = 64


# Metadata (ADR 0045): the caller's own key-value pairs, kept with a job or a stored
# detection, echoed in every answer and event about it, and a filter of the jobs list and the
# history. Keys are identifiers, so a filter `key:value` splits unambiguously; values are text
# a person reads back.
MAX_METADATA_PAIRS = 16
# The history's file-name search: a part of a name, so never longer than a stored name.
MAX_FILENAME_FILTER_CHARS = 255
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_.-]+$"
_METADATA_KEY = re.compile(METADATA_KEY_PATTERN)


def checked_metadata(pairs: Mapping[str, str]) -> dict[str, str]:
    """`pairs` as a job or a stored detection keeps them, or InvalidArgument naming the first
    pair beyond the limits: at most MAX_METADATA_PAIRS, each key 1 to MAX_METADATA_KEY_CHARS
    letters, digits, `_`, `.` or `-`, each value 1 to MAX_METADATA_VALUE_CHARS characters of
    text fit to show (no control characters, line separators or bidirectional controls)."""
    if len(pairs) > MAX_METADATA_PAIRS:
        raise InvalidArgument(
            f"metadata has {len(pairs)} keys; at most {MAX_METADATA_PAIRS} are kept"
        )
    for key, value in pairs.items():
        if len(key) > MAX_METADATA_KEY_CHARS or not _METADATA_KEY.fullmatch(key):
            raise InvalidArgument(
                f"metadata key {key[:MAX_METADATA_KEY_CHARS]!r} must be 1 to"
                f" {MAX_METADATA_KEY_CHARS} letters, digits, '_', '.' or '-'"
            )
        if not value.strip() or len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidArgument(
                f"metadata value of {key!r} must be 1 to {MAX_METADATA_VALUE_CHARS} characters,"
                " not blank"
            )
        problem = undisplayable(value)
        if problem is not None:
            raise InvalidArgument(f"metadata value of {key!r} must not hold {problem}")
    return dict(pairs)


def checked_filename_filter(text: str) -> str:
    """The history's file-name search as names are stored (NFC, no surrounding spaces), or
    InvalidArgument beyond MAX_FILENAME_FILTER_CHARS or for text no stored name holds
    (control characters, NUL included, which PostgreSQL text cannot even carry); ""
    searches nothing."""
    wanted = unicodedata.normalize("NFC", text).strip()
    if len(wanted) > MAX_FILENAME_FILTER_CHARS:
        raise InvalidArgument(
            f"the file name to search for has {len(wanted)} characters; stored names have at"
            f" most {MAX_FILENAME_FILTER_CHARS}"
        )
    problem = undisplayable(wanted)
    if problem is not None:
        raise InvalidArgument(f"the file name to search for must not hold {problem}")
    return wanted


def checked_confidence_below(value: float) -> float:
    """The history's "unsure" filter: a score above 0 and at most 1 (below 0 nothing scores,
    and every object scores below anything over 1), or InvalidArgument. Rounded to 6 decimals:
    sent as a float32, 0.3 arrives as 0.30000001."""
    if not 0 < value <= 1:  # NaN fails this too
        raise InvalidArgument(f"confidence_below must be above 0 and at most 1, not {value:g}")
    return round(value, 6)
