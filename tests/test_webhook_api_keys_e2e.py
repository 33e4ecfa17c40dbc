"""A webhook registered with an API key lives no longer than that key (ADR 0026, amendment),
end to end on the shared stack: the gateway signs the key's principal, notification-service
records the key on the webhook and lists it, revoking the key in auth-service stages
`api_key.revoked` in the same commit, and notification-service, reading it from the events
stream, deletes that key's webhooks and no others.

"Eventually" is polled on the owner's own webhook list with a bounded deadline.
"""

import uuid
from typing import Any

import httpx

from objectvision_devstack.api_users import Account, signed_in
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

API_KEYS = "/api/v1/users/me/api-keys"
WEBHOOKS = "/api/v1/webhooks"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
DELETED_WITHIN_SECONDS = 60.0


async def _key(client: httpx.AsyncClient, owner: Account, scopes: list[str]) -> dict[str, Any]:
    created = await client.post(
        API_KEYS,
        json={"name": f"hooks-{uuid.uuid4().hex[:6]}", "scopes": scopes},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def _register(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> str:
    created = await client.post(
        WEBHOOKS, json={"url": url, "events": ["job.completed"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _listed(stack: Stack, owner: Account) -> dict[str, str | None]:
    """The owner's webhooks as the owner sees them: id -> the key that registered it."""
    answer = httpx.get(f"{stack.gateway_url}{WEBHOOKS}", headers=owner.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return {hook["id"]: hook["api_key_id"] for hook in answer.json()["items"]}


async def test_revoking_a_key_deletes_the_webhooks_it_registered_and_no_others(
    stack: Stack, gateway_client: httpx.AsyncClient, hook_receiver: Any
) -> None:
    owner = await signed_in(gateway_client, prefix="hook-keys", name="Hook Keys")
    revoked = await _key(gateway_client, owner, ["webhooks"])
    kept = await _key(gateway_client, owner, ["webhooks", "detect"])
    by_revoked = await _register(
        gateway_client, {"X-API-Key": revoked["secret"]}, f"{hook_receiver.url}/revoked"
    )
    by_kept = await _register(
        gateway_client, {"X-API-Key": kept["secret"]}, f"{hook_receiver.url}/kept"
    )
    by_session = await _register(gateway_client, owner.headers, f"{hook_receiver.url}/session")
    # The owner sees which key made which webhook; a session's made by none.
    assert _listed(stack, owner) == {
        by_revoked: revoked["id"],
        by_kept: kept["id"],
        by_session: None,
    }

    answer = await gateway_client.delete(f"{API_KEYS}/{revoked['id']}", headers=owner.headers)
    assert answer.status_code == 204, answer.text

    await eventually(
        lambda: by_revoked not in _listed(stack, owner),
        within=DELETED_WITHIN_SECONDS,
        what="the revoked key's webhook deleted",
    )
    assert _listed(stack, owner) == {by_kept: kept["id"], by_session: None}
    # The key that stays still manages its webhooks, and sees the list as the owner does.
    with_kept = await gateway_client.get(WEBHOOKS, headers={"X-API-Key": kept["secret"]})
    assert with_kept.status_code == 200, with_kept.text
    assert {hook["id"] for hook in with_kept.json()["items"]} == {by_kept, by_session}
