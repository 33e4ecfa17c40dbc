"""The models this deployment serves: what `model` on the detect routes accepts (an API key
needs the `detect` scope, as for detecting)."""

from gateway.auth.dependencies import DetectUpstream, signed_in_router
from gateway.schemas.models import ModelListOut
from objectvision.v1 import detection_pb2

router = signed_in_router("/api/v1/models", "models")


@router.get("", summary="The models this deployment serves")
async def list_models(upstream: DetectUpstream) -> ModelListOut:
    """Read from Triton's model repository at each call: a model added there (and loaded)
    appears here without a restart, with its version, classes, precision and device."""
    listed = await upstream.call(upstream.detection.ListModels, detection_pb2.ListModelsRequest())
    return ModelListOut.from_proto(listed)
