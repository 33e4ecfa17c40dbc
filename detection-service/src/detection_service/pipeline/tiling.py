"""Tiled detection: small objects in large images (ADR 0051).

The model sees every image letterboxed to 640x640, so in a 4000-pixel photo a person 40 pixels
tall shrinks to six and is lost. With a tile size, the image is also cut into overlapping
squares of that side, each detected at the model's full resolution like an upload of its own,
and the objects of the tiles and of the whole image are merged: an object cut by a tile's edge
is found whole in its neighbour or in the whole image, and the partial box is merged into the
whole one (non-maximum merging by intersection over the smaller box, as SAHI does by default;
supervision's `Detections.with_nmm`).

The grid depends on the image's size as decoded (EXIF orientation applied), so the confined
child that decodes the image cuts the tiles (`cut`) and says where each stands; the service
only counts them from the header beforehand (`tile_count`: the same either way round).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Two boxes of one class are one object when this share of the smaller lies in the larger.
MERGE_THRESHOLD = 0.5
# Fast lossless compression: a tile is sent once, to Triton, and decoded at once.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
# A box this near an edge of its tile is taken to go on beyond it.
_EDGE_PIXELS = 2.0


@dataclass(frozen=True)
class Tile:
    """Where a tile stands in the image (its top-left corner, its size) and its PNG."""

    x: int
    y: int
    width: int
    height: int
    png: bytes


def _starts(length: int, size: int, overlap: float) -> list[int]:
    """Where tiles begin along one side: a stride of the size less the overlap, the last tile
    flush with the far edge; one tile when the side fits in it."""
    if length <= size:
        return [0]
    stride = max(1, size - round(size * overlap))
    starts = list(range(0, length - size, stride))
    starts.append(length - size)
    return starts


def tile_count(width: int, height: int, size: int, overlap: float) -> int:
    """How many tiles a `width` x `height` image is cut into (1: it fits in one, no tiling)."""
    return len(_starts(width, size, overlap)) * len(_starts(height, size, overlap))


def tiled_pixels(width: int, height: int, size: int, overlap: float) -> int:
    """The pixels of all the tiles together: what cutting holds in memory and sends on."""
    columns, rows = len(_starts(width, size, overlap)), len(_starts(height, size, overlap))
    return columns * min(size, width) * rows * min(size, height)


def cut(image: np.ndarray, size: int, overlap: float) -> list[Tile]:
    """The tiles of a decoded BGR image, row by row, each encoded as PNG (lossless: a tile is
    detected from the pixels of the upload)."""
    height, width = image.shape[:2]
    tiles = []
    for y in _starts(height, size, overlap):
        for x in _starts(width, size, overlap):
            crop = image[y : y + size, x : x + size]
            ok, encoded = cv2.imencode(".png", crop, _PNG_PARAMS)
            if not ok:
                raise ValueError("a tile could not be encoded as PNG")
            tiles.append(Tile(x, y, crop.shape[1], crop.shape[0], encoded.tobytes()))
    return tiles


def _cut_by_an_edge(rows: np.ndarray, tile: Tile, image_size: tuple[int, int]) -> np.ndarray:
    """Which of a tile's boxes (in its pixels) touch an edge of the tile that is inside the
    image: the object may go on beyond it, so the box may be a piece of it."""
    width, height = image_size
    left = (tile.x > 0) & (rows[:, 0] <= _EDGE_PIXELS)
    top = (tile.y > 0) & (rows[:, 1] <= _EDGE_PIXELS)
    right = (tile.x + tile.width < width) & (rows[:, 2] >= tile.width - _EDGE_PIXELS)
    bottom = (tile.y + tile.height < height) & (rows[:, 3] >= tile.height - _EDGE_PIXELS)
    return np.asarray(left | top | right | bottom)


def merge(
    whole: np.ndarray,
    tiles: Sequence[tuple[Tile, np.ndarray]],
    image_size: tuple[int, int],
    max_detections: int,
) -> np.ndarray:
    """The rows (x1, y1, x2, y2, score, class) of the whole image and of each tile (in the
    tile's pixels) as one set in the image's pixels, the highest scores first, at most
    `max_detections`.

    Boxes seen whole (the whole image's, and a tile's that touch no edge inside the image) are
    one object when one lies half in another of its class, and the higher score is kept: a
    tile's sharp box of a small person wins over the whole image's blurred one. A box a tile's
    edge cuts is a piece: dropped when it lies half in an object seen whole, and otherwise
    merged with the other pieces of its object into their union (non-maximum merging): an
    object larger than the overlap that the whole image missed is put together again."""
    # supervision loads SciPy: imported when an image is tiled, not with the service.
    import supervision as sv

    seen_whole, pieces = [whole.reshape(-1, 6)], []
    for tile, found in tiles:
        rows = found.reshape(-1, 6).astype(np.float64)
        cut = _cut_by_an_edge(rows, tile, image_size)
        rows[:, [0, 2]] += tile.x
        rows[:, [1, 3]] += tile.y
        seen_whole.append(rows[~cut])
        pieces.append(rows[cut])

    def detections(rows: np.ndarray) -> sv.Detections:
        return sv.Detections(
            xyxy=rows[:, :4], confidence=rows[:, 4], class_id=rows[:, 5].astype(int)
        )

    def rows_of(found: sv.Detections) -> np.ndarray:
        assert found.confidence is not None and found.class_id is not None
        return np.column_stack([found.xyxy, found.confidence, found.class_id.astype(np.float64)])

    objects = rows_of(
        detections(np.concatenate(seen_whole).astype(np.float64)).with_nms(
            MERGE_THRESHOLD, overlap_metric=sv.OverlapMetric.IOS
        )
    )
    rest = np.concatenate(pieces) if pieces else np.zeros((0, 6))
    if len(rest) and len(objects):
        inside = sv.box_iou_batch(rest[:, :4], objects[:, :4], overlap_metric=sv.OverlapMetric.IOS)
        same_class = rest[:, 5, None] == objects[None, :, 5]
        rest = rest[~((inside > MERGE_THRESHOLD) & same_class).any(axis=1)]
    if len(rest):
        rest = rows_of(
            detections(rest).with_nmm(MERGE_THRESHOLD, overlap_metric=sv.OverlapMetric.IOS)
        )
    rows = np.concatenate([objects, rest])
    return rows[np.argsort(-rows[:, 4], kind="stable")][:max_detections]
