"""The caller's API keys. Creating one needs a signed-in session (the auth service refuses
an API-key caller with 403), so a leaked key cannot mint successors."""

import uuid

from fastapi import Response

from gateway.auth.dependencies import UserUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.api_keys import ApiKeyCreateIn, ApiKeyListOut, ApiKeyOut, CreatedApiKeyOut
from objectvision.v1 import auth_pb2

router = signed_in_router("/api/v1/users/me/api-keys", "api-keys")


@router.post(
    "",
    status_code=201,
    summary="Create an API key; its secret is in this response only",
    responses=error_responses(403, 413, 422),
)
async def create_api_key(body: ApiKeyCreateIn, upstream: UserUpstream) -> CreatedApiKeyOut:
    created = await upstream.call(
        upstream.auth.CreateApiKey, auth_pb2.CreateApiKeyRequest(name=body.name)
    )
    return CreatedApiKeyOut.from_created(created)


@router.get("", summary="The caller's API keys, revoked ones included")
async def list_api_keys(upstream: UserUpstream) -> ApiKeyListOut:
    listed = await upstream.call(upstream.auth.ListApiKeys, auth_pb2.ListApiKeysRequest())
    return ApiKeyListOut(items=[ApiKeyOut.from_proto(key) for key in listed.keys])


@router.delete(
    "/{key_id:uuid}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key",
    responses=error_responses(404, 422),
)
async def revoke_api_key(key_id: uuid.UUID, upstream: UserUpstream) -> Response:
    await upstream.call(
        upstream.auth.RevokeApiKey, auth_pb2.RevokeApiKeyRequest(key_id=str(key_id))
    )
    return Response(status_code=204)
