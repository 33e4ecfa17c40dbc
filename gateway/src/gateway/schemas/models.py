"""The models a deployment serves, as the detection service reads them from Triton."""

from typing import Self

from pydantic import Field

from gateway.schemas.base import ApiModel, ProtoMirror
from objectvision.v1 import detection_pb2


class ModelOut(ProtoMirror):
    """One model of Triton's repository. A model that is not ready answers detect requests
    with 503 and Retry-After until it is."""

    name: str = Field(description="What `model` takes on the detect routes, e.g. 'yolov8n-int8'.")
    version: str = Field(description="The version that answers, e.g. '1'.")
    task: str = Field(description="'detect': objects with boxes.")
    input_size: int = Field(description="Images are letterboxed to this square (pixels).")
    classes: list[str] = Field(description="Class names in id order (what `classes` accepts).")
    precision: str = Field(description="'fp32', 'fp16' or 'int8'.")
    device: str = Field(description="Where it runs: 'cpu' or 'gpu'.")
    ready: bool = Field(description="Loaded and answering.")
    state: str = Field(description="Triton's state: READY, LOADING, UNLOADING, UNAVAILABLE.")
    reason: str | None = Field(description="Why it is not ready, when Triton says.")
    default: bool = Field(description="The model used when a request names none.")


class ModelListOut(ApiModel):
    """Every model this deployment serves, by name."""

    items: list[ModelOut]
    default_model: str = Field(description="The model used when a request names none.")

    @classmethod
    def from_proto(cls, listed: detection_pb2.ListModelsResponse) -> Self:
        return cls(
            items=[ModelOut.from_proto(model) for model in listed.models],
            default_model=listed.default_model,
        )
