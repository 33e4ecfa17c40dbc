"""The served model's class names: one source for the repository builder and the service.

A YOLOv8 ONNX export carries its classes as `names` metadata (a Python dict literal of id to
name). The Triton configs (`triton.py`) and detection-service (class filters, exports,
history) both read it here, so a model with other classes changes both at once. COCO's 80,
in YOLO order, stand in only where the model file is not on the machine.
"""

import ast
from pathlib import Path

import onnx

COCO_CLASS_NAMES = (
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


def class_names_from_onnx(path: str | Path) -> tuple[str, ...]:
    """The `names` metadata of the ONNX file at `path`, in class-id order.

    Raises ValueError when the file has none or they are not ids 0..N-1: a model whose classes
    cannot be read must not be served under COCO's names by accident.
    """
    model = onnx.load(str(path), load_external_data=False)
    props = {prop.key: prop.value for prop in model.metadata_props}
    if "names" not in props:
        raise ValueError(f"{path} has no `names` metadata")
    names = ast.literal_eval(props["names"])
    if not isinstance(names, dict) or not names or sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: `names` is not a dict of class ids 0..N-1")
    return tuple(str(names[i]) for i in range(len(names)))
