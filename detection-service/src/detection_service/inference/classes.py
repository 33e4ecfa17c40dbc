"""Class names of the served model, from its ONNX metadata (`names`, a Python dict literal)."""

import ast
import logging
from pathlib import Path

import onnx

logger = logging.getLogger(__name__)

# COCO-80 in YOLO order: used only when the model file is not on this machine (SERVED_MODEL_PATH).
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


def class_names_from_onnx(path: Path) -> tuple[str, ...]:
    model = onnx.load(str(path), load_external_data=False)
    props = {prop.key: prop.value for prop in model.metadata_props}
    if "names" not in props:
        raise ValueError(f"{path} has no `names` metadata")
    names = ast.literal_eval(props["names"])
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: `names` is not a dict of class ids 0..N-1")
    return tuple(str(names[i]) for i in range(len(names)))


def load_class_names(model_path: Path) -> tuple[str, ...]:
    """Names from the served model file; COCO-80 with a warning when the file is absent."""
    if model_path.exists():
        return class_names_from_onnx(model_path)
    logger.warning(
        "model file not found; using the built-in COCO class names", extra={"path": str(model_path)}
    )
    return COCO_CLASSES
