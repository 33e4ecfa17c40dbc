"""Stage 4, the public REST API: `POST /api/v1/detect/image` through the gateway.

The route's shape is read from the gateway's own OpenAPI document (file field name; whether
`store` is a query or form parameter), so this stage follows the route as it is built and
says plainly when the route does not exist yet. The caller signs up and logs in like any
user and sends its Bearer token.
"""

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bench.images import Image
from bench.stages import StageContext, logger
from bench.stages.http import client, post_image, upload_factory

STAGE = "gateway"
ROUTE = "/api/v1/detect/image"
PASSWORD = "bench-password-not-secret"  # noqa: S105 - a throwaway user of a throwaway stack


class RouteMissing(Exception):
    """The gateway has no such route (yet)."""


@dataclass(frozen=True)
class UploadRoute:
    field: str
    # dataclasses.field: the name `field` is this class's first attribute.
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    form: dict[str, str] = dataclasses.field(default_factory=dict)

    async def post(
        self, http: httpx.AsyncClient, url: str, image: Image, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """One upload of `image` shaped as this route takes it."""
        return await post_image(
            http, url, image, field=self.field, headers=headers, params=self.params, form=self.form
        )


def _resolve(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    node: Mapping[str, Any] = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _is_file(prop: Mapping[str, Any]) -> bool:
    if prop.get("format") == "binary" or "contentMediaType" in prop:
        return True
    items = prop.get("items")
    if isinstance(items, Mapping) and _is_file(items):
        return True
    return any(_is_file(option) for option in prop.get("anyOf", []) if isinstance(option, Mapping))


def upload_route(spec: Mapping[str, Any]) -> UploadRoute:
    """Where the image goes and how to say store=false, from the OpenAPI document."""
    operation = spec.get("paths", {}).get(ROUTE, {}).get("post")
    if operation is None:
        raise RouteMissing(f"POST {ROUTE} is not in the gateway's OpenAPI document")
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" not in content:
        raise RouteMissing(f"POST {ROUTE} takes no multipart/form-data body")
    schema = _resolve(content["multipart/form-data"].get("schema", {}), spec)
    properties: Mapping[str, Any] = schema.get("properties", {})
    files = [name for name, prop in properties.items() if _is_file(_resolve(prop, spec))]
    if not files:
        raise RouteMissing(f"POST {ROUTE} has no file field in its multipart body")
    query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    # Sent once only: the gateway refuses `store` given both ways.
    if "store" in query:
        return UploadRoute(field=files[0], params={"store": "false"})
    if "store" in properties:
        return UploadRoute(field=files[0], form={"store": "false"})
    return UploadRoute(field=files[0])


def mentions(value: Any, word: str) -> bool:
    if isinstance(value, str):
        return value == word
    if isinstance(value, Mapping):
        return any(mentions(v, word) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, word) for v in value)
    return False


async def login(http: httpx.AsyncClient, base_url: str) -> str:
    """A fresh user's access token, through the gateway's own sign-up and login."""
    email = f"bench-{uuid.uuid4().hex}@example.com"
    signup = await http.post(
        f"{base_url}/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "name": "Benchmark"},
    )
    signup.raise_for_status()
    tokens = await http.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    tokens.raise_for_status()
    return str(tokens.json()["access_token"])


async def caller(http: httpx.AsyncClient, base_url: str) -> tuple[UploadRoute, dict[str, str]]:
    """The upload route's shape (from the OpenAPI document) and a fresh user's auth headers;
    RouteMissing when the gateway has no such route."""
    route = upload_route((await http.get(f"{base_url}/openapi.json")).json())
    return route, {"Authorization": f"Bearer {await login(http, base_url)}"}


async def caller_or_skip(
    ctx: StageContext, *, stage: str, base_url: str
) -> tuple[UploadRoute, dict[str, str]] | None:
    """What `caller` gives, or None once `stage` is recorded as skipped because the gateway
    has no such route: a stage through the gateway measures the route as it is built."""
    async with httpx.AsyncClient(timeout=60.0) as http:
        try:
            return await caller(http, base_url)
        except RouteMissing as missing:
            ctx.skip(stage, str(missing))
            return None


async def run(ctx: StageContext, *, base_url: str, involved: list[str]) -> None:
    resolved = await caller_or_skip(ctx, stage=STAGE, base_url=base_url)
    if resolved is None:
        return
    route, headers = resolved
    url = f"{base_url}{ROUTE}"
    async with httpx.AsyncClient(timeout=60.0) as http:
        body = await route.post(http, url, ctx.images[0], headers)
    if ctx.images[0].name == "bus.jpg" and not mentions(body, "bus"):
        raise RuntimeError(f"the gateway finds no bus in bus.jpg: {str(body)[:300]}")
    logger.info(
        "gateway route: file field %r, params %s, form %s", route.field, route.params, route.form
    )
    if not route.params and not route.form:
        ctx.note(f"{ROUTE} has no `store` parameter: measured with its default")
    for concurrency in ctx.config.concurrencies_for(STAGE):
        async with client(concurrency, ctx.config.request_timeout_s) as pool:
            factory = upload_factory(
                pool,
                url,
                ctx.images,
                field=route.field,
                headers=headers,
                params=route.params,
                form=route.form,
            )
            await ctx.measure(STAGE, concurrency, factory, involved=involved)
