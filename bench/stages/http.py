"""Multipart image uploads over HTTP/1.1 (httpx, async): the naive app and the gateway.

One pooled client per point, one keep-alive connection per worker, so connection set-up is
paid once, as a browser or SDK would.
"""

import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from bench.images import Image
from bench.loadgen import RequestError, Send, WorkerFactory


def client(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=timeout_s, limits=limits)


async def post_image(
    http: httpx.AsyncClient,
    url: str,
    image: Image,
    *,
    field: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One upload; RequestError(`http:<status>`) unless the answer is 2xx JSON."""
    try:
        response = await http.post(
            url,
            files={field: (image.name, image.data, image.content_type)},
            data=dict(form or {}),
            params=dict(params or {}),
            headers=dict(headers or {}),
        )
    except httpx.TransportError as error:
        raise RequestError(f"http:{type(error).__name__}", str(error)) from None
    if not response.is_success:
        raise RequestError(f"http:{response.status_code}", response.text[:200])
    body: dict[str, Any] = response.json()
    return body


def upload_factory(
    http: httpx.AsyncClient,
    url: str,
    images: list[Image],
    *,
    field: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> WorkerFactory:
    """Workers that upload the image set in turn, each starting at its own offset."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        order = itertools.islice(itertools.cycle(images), index % len(images), None)

        async def send() -> int:
            await post_image(
                http, url, next(order), field=field, headers=headers, params=params, form=form
            )
            return 1

        yield send

    return factory
