"""Answers already computed: the same image, model version and options never run twice.

Keyed by the SHA-256 of the upload's bytes, the model's name and version (read from Triton,
so a new version never serves an old answer) and the options that change the answer. Entries
live in Redis with a TTL and a bound on their number (oldest evicted first), so a re-upload, a
retried request or a repeated video frame costs no inference. Redis being away only means
misses: the cache is an optimisation, never a dependency.

Entries are shared by every user: only the same bytes find an answer, and whoever holds those
bytes could have the model compute the same answer. Still, when a user deletes a stored image
its answers go too (`forget`): each image's keys are listed in a set of its own, so every
answer for those bytes (any model, version or options) can be found without a scan.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import cast

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from detection_service.pipeline.types import DetectedObject, DetectionOptions

logger = logging.getLogger(__name__)

_PREFIX = "detection:cache:"
_INDEX = "detection:cache:index"
# One set per image's bytes, of its entries' keys; outside _PREFIX so no entry key can clash.
_IMAGE_PREFIX = "detection:cache-image:"


@dataclass(frozen=True)
class CachedAnswer:
    width: int
    height: int
    objects: list[DetectedObject]


def image_digest(data: bytes) -> str:
    """What the cache knows an image by: the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def content_key(data: bytes, *, model: str, version: str, options: DetectionOptions) -> str:
    """The cache key of one image under one model version and one set of options."""
    settings = json.dumps(options.to_json(), sort_keys=True, separators=(",", ":"))
    options_digest = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return f"{_PREFIX}{model}:{version}:{image_digest(data)}:{options_digest}"


def _image_set(key: str) -> str:
    """The set listing `key` among its image's entries. The digest is the key's second field
    from the end: both last fields are hex, so a ':' in a model name cannot shift them."""
    return f"{_IMAGE_PREFIX}{key.rsplit(':', 2)[-2]}"


class ResultCache:
    def __init__(self, redis: Redis, *, ttl_s: int, max_entries: int, lookups: Counter) -> None:
        self._redis = redis
        self._ttl = ttl_s
        self._max_entries = max_entries
        self._lookups = lookups

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = await self._redis.get(key)
        except RedisError:
            logger.debug("result cache unavailable", exc_info=True)
            self._lookups.labels("unavailable").inc()
            return None
        if raw is None:
            self._lookups.labels("miss").inc()
            return None
        self._lookups.labels("hit").inc()
        value = json.loads(raw)
        objects = [DetectedObject.from_fields(obj) for obj in value["objects"]]
        return CachedAnswer(value["width"], value["height"], objects)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        """Store with the TTL; past the bound, the oldest entries go."""
        value = json.dumps(
            {
                "width": answer.width,
                "height": answer.height,
                "objects": [obj.__dict__ for obj in answer.objects],
            },
            separators=(",", ":"),
        )
        try:
            now = time.time()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(key, value, ex=self._ttl)
                pipe.zadd(_INDEX, {key: now})
                # Evictions below leave their keys in the set: forgetting them is harmless.
                pipe.sadd(_image_set(key), key)
                pipe.expire(_image_set(key), self._ttl)
                pipe.zremrangebyscore(_INDEX, "-inf", now - self._ttl)
                pipe.zcard(_INDEX)
                *_, count = await pipe.execute()
            if count > self._max_entries:
                # ZPOPMIN answers (member, score) pairs; redis' type also admits bare members.
                evicted = cast(
                    list[tuple[bytes, float]],
                    await self._redis.zpopmin(_INDEX, count - self._max_entries),
                )
                if evicted:
                    await self._redis.delete(*(name for name, _ in evicted))
        except RedisError:
            logger.debug("result cache unavailable", exc_info=True)

    async def forget(self, digest: str) -> None:
        """Drop every answer cached for the image whose bytes have this `image_digest`.

        Redis being away leaves them to expire with the TTL; a deletion never fails for it."""
        image_set = f"{_IMAGE_PREFIX}{digest}"
        try:
            keys = list(await self._redis.smembers(image_set))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(image_set, *keys)
                if keys:
                    pipe.zrem(_INDEX, *keys)
                await pipe.execute()
        except RedisError:
            logger.warning(
                "result cache unavailable: a deleted image's answers expire with their TTL",
                exc_info=True,
            )
