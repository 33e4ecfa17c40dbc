"""The naive baseline answers, in process, with the plain model: a 3-request smoke run."""

import httpx
import pytest

from bench.config import BenchConfig
from bench.images import load_images

CONFIG = BenchConfig.preset(quick=True)

pytestmark = pytest.mark.skipif(
    not CONFIG.model.exists() or not CONFIG.images.exists(),
    reason="needs ../shared/models/yolov8n.onnx and ../shared/images",
)


async def test_three_requests_find_the_objects_of_the_sample_images():
    from bench.naive_app import create_app

    images = {image.name: image for image in load_images(CONFIG.images)}
    app = create_app(CONFIG.model, threads=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://naive") as client:
        found = []
        for name in ("bus.jpg", "zidane.jpg", "bus.jpg"):
            image = images[name]
            response = await client.post(
                "/detect", files={"file": (name, image.data, image.content_type)}
            )
            assert response.status_code == 200, response.text
            found.append(sorted({obj["class_name"] for obj in response.json()["objects"]}))
        bad = await client.post("/detect", files={"file": ("x.jpg", b"not an image", "image/jpeg")})
    assert found[0] == found[2] == ["bus", "person"]
    assert {"person", "tie"} <= set(found[1])
    assert bad.status_code == 400
