"""The caller's API keys, managed from a signed-in session only (`AccountUpstream`: an API
key is a 403 `session_required`), so a leaked key can neither mint successors that outlive
its revocation nor see or revoke the others. The auth service refuses an API-key caller of
CreateApiKey as well."""

import uuid

from fastapi import Response

from gateway.auth.dependencies import AccountUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.api_keys import ApiKeyCreateIn, ApiKeyListOut, ApiKeyOut, CreatedApiKeyOut
from objectvision.v1 import auth_pb2

router = signed_in_router("/api/v1/users/me/api-keys", "api-keys")


@router.post(
    "",
    status_code=201,
    summary="Create an API key; its secret is in this response only",
    responses=error_responses(403, 409, 413, 422),
)
async def create_api_key(body: ApiKeyCreateIn, upstream: AccountUpstream) -> CreatedApiKeyOut:
    """`scopes` says what the key may do (left out: every scope); `expires_in_days` when it
    stops working (left out: when it is revoked). Neither can be changed later. An account
    has at most 100 keys in use: one more is a 409 (revoke one it no longer needs)."""
    created = await upstream.call(upstream.auth.CreateApiKey, body.to_proto())
    return CreatedApiKeyOut.from_created(created)


@router.get(
    "",
    summary="The caller's API keys: every key in use, then the 100 newest revoked or expired",
)
async def list_api_keys(upstream: AccountUpstream) -> ApiKeyListOut:
    listed = await upstream.call(upstream.auth.ListApiKeys, auth_pb2.ListApiKeysRequest())
    return ApiKeyListOut(items=[ApiKeyOut.from_proto(key) for key in listed.keys])


@router.delete(
    "/{key_id:uuid}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key",
    responses=error_responses(404, 422),
)
async def revoke_api_key(key_id: uuid.UUID, upstream: AccountUpstream) -> Response:
    await upstream.call(
        upstream.auth.RevokeApiKey, auth_pb2.RevokeApiKeyRequest(key_id=str(key_id))
    )
    return Response(status_code=204)
