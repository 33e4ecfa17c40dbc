"""An accepted upload: its bytes, what its header says it is, and a display-only filename."""

import re
import unicodedata
from dataclasses import dataclass

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
