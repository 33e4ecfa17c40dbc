"""An accepted upload: its bytes, what its header says it is, and a display-only filename."""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from detection_service.pipeline.header import ImageHeader

MAX_FILENAME_CHARS = 255


def sanitize_filename(name: str) -> str:
    """The last path component, printable characters only, no leading dots, at most 255 chars.

    Only ever shown back to the user; storage keys are never derived from it.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if ch.isprintable())
    # Dots and spaces in any order (". .x"): one lstrip(".") between two strips left a dot.
    return re.sub(r"^[\s.]+", "", base).strip()[:MAX_FILENAME_CHARS]


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    header: ImageHeader

    @property
    def content_type(self) -> str:
        return self.header.format.content_type

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def stored_object(self) -> bytes:
        """What storage takes in for it (images.service.store)."""
        return self.data


@dataclass(frozen=True)
class SpooledUpload:
    """An accepted image waiting in a scratch file: a stored image read back for a rerun
    (ADR 0058). Storage takes the file in by moving it, so a job of a hundred large images is
    never held in memory whole; whoever made the file removes it if it was not taken in."""

    path: Path
    size: int
    filename: str
    header: ImageHeader

    @property
    def content_type(self) -> str:
        return self.header.format.content_type

    @property
    def stored_object(self) -> Path:
        return self.path


# An image a batch job is submitted with: in memory (an upload) or in a scratch file.
JobUpload = Upload | SpooledUpload
