"""The same image is never detected twice: answers cached by content, model version and options.

Against the real Triton and Redis: a second Detect of the same bytes with the same options is
answered from the cache (no inference: Triton's own counter does not move) and says so; other
options, or other bytes, run the model; the cache keeps at most its bound of entries, and a
Redis outage only means misses.
"""

import uuid

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from detection_service.pipeline.result_cache import CachedAnswer, ResultCache, content_key
from detection_service.pipeline.types import DetectedObject, DetectionOptions
from objectvision.v1 import detection_pb2
from objectvision_devstack.processes import free_port
from objectvision_devstack.triton import settled_count

OPTIONS = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300)


def _inferences(triton) -> float:
    text = requests.get(triton.metrics_url, timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nv_inference_count{")
    )


def _variant(jpeg: bytes) -> bytes:
    """Other bytes of a valid JPEG (a comment segment after SOI): a cache miss by content."""
    note = f"variant {uuid.uuid4()}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


@pytest.fixture
async def cached(make_harness):
    return await make_harness(RESULT_CACHE_TTL_SECONDS=600)


async def _detect(harness, user, data, **params):
    reply = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename="x.jpg")],
            params=detection_pb2.DetectionParams(**params),
            store=False,
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return reply.results[0]


async def test_the_same_image_and_options_are_answered_from_the_cache(
    cached, user, bus_jpg, triton
):
    image = _variant(bus_jpg)
    first = await _detect(cached, user, image)
    assert not first.cached and len(first.objects) == 5
    before = await settled_count(lambda: _inferences(triton))
    again = await _detect(cached, user, image)
    assert again.cached
    assert await settled_count(lambda: _inferences(triton)) == before
    assert [(o.class_id, o.confidence) for o in again.objects] == [
        (o.class_id, o.confidence) for o in first.objects
    ]
    assert (again.width, again.height) == (810, 1080)

    stricter = await _detect(cached, user, image, confidence=0.8)
    assert not stricter.cached
    assert await settled_count(lambda: _inferences(triton)) > before
    other = await _detect(cached, user, _variant(bus_jpg))
    assert not other.cached


def test_the_key_changes_with_the_model_version_the_options_and_the_bytes(bus_jpg):
    key = content_key(bus_jpg, model="yolov8n", version="1", options=OPTIONS)
    assert key != content_key(bus_jpg, model="yolov8n", version="2", options=OPTIONS)
    assert key != content_key(bus_jpg, model="yolov8n-int8", version="1", options=OPTIONS)
    other = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300, class_ids=frozenset({5}))
    assert key != content_key(bus_jpg, model="yolov8n", version="1", options=other)
    assert key != content_key(bus_jpg + b"\x00", model="yolov8n", version="1", options=OPTIONS)
    assert key == content_key(bytes(bus_jpg), model="yolov8n", version="1", options=OPTIONS)


def _lookups(registry: CollectorRegistry | None = None) -> Counter:
    return Counter("lookups", "test", ["outcome"], registry=registry or CollectorRegistry())


async def test_the_cache_keeps_at_most_its_bound_oldest_out_first(infrastructure):
    redis = Redis.from_url(infrastructure.redis_url, decode_responses=True)
    await redis.delete("detection:cache:index")
    cache = ResultCache(redis, ttl_s=600, max_entries=2, lookups=_lookups())
    answer = CachedAnswer(10, 20, [DetectedObject(0, "person", 0.9, 1.0, 2.0, 3.0, 4.0)])
    keys = [f"detection:cache:test:{uuid.uuid4()}" for _ in range(3)]
    try:
        for key in keys:
            await cache.put(key, answer)
        assert await cache.get(keys[0]) is None
        assert await cache.get(keys[2]) == answer
        assert await redis.ttl(keys[2]) > 500
    finally:
        await redis.delete(*keys, "detection:cache:index")
        await redis.aclose()


async def test_redis_away_means_misses_not_errors():
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    registry = CollectorRegistry()
    cache = ResultCache(gone, ttl_s=60, max_entries=10, lookups=_lookups(registry))
    assert await cache.get("detection:cache:anything") is None
    await cache.put("detection:cache:anything", CachedAnswer(1, 1, []))
    assert registry.get_sample_value("lookups_total", {"outcome": "unavailable"}) == 1
    await gone.aclose()
