"""Class names of the served model, read once at start-up (objectvision_inference.class_names)."""

import logging
from pathlib import Path

from objectvision_inference.class_names import COCO_CLASS_NAMES, class_names_from_onnx

logger = logging.getLogger(__name__)


def load_class_names(model_path: Path) -> tuple[str, ...]:
    """Names from the served model file; COCO-80 with a warning when the file is absent."""
    if model_path.exists():
        return class_names_from_onnx(model_path)
    logger.warning(
        "model file not found; using the built-in COCO class names", extra={"path": str(model_path)}
    )
    return COCO_CLASS_NAMES
