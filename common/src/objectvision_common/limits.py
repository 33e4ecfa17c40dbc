"""Limits of the APIs that both sides of gRPC enforce, defined once.

The gateway refuses a REST request beyond them (422) before any call; detection-service
refuses a gRPC call beyond them (INVALID_ARGUMENT), since internal services call it directly.
Written twice, the two could drift apart and a request the gateway accepted would fail behind
it, or the other way round.
"""

from objectvision.v1 import common_pb2
from objectvision_common.errors import InvalidArgument

# History pages: what a request that names no limit gets, and the most one page holds.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
# An Idempotency-Key header (a batch job's), in characters.
MAX_IDEMPOTENCY_KEY_CHARS = 200
# Objects one image may be answered with, whatever the request asks.
MAX_DETECTIONS_LIMIT = 1000


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
