"""`DELETE /api/v1/users/me` in the gateway alone (the services down): it is for signed-in
callers only, takes the password in its body, and documents what it answers.

The deletion itself, with the real services, the erasure and the goodbye email, is
tests/test_account_deletion_e2e.py.
"""

import httpx

ME = "/api/v1/users/me"


async def test_deleting_an_account_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = await client.request(
            "DELETE", ME, json={"current_password": "correct horse battery"}, headers=headers
        )
        assert answer.status_code == 401, answer.text
        assert "www-authenticate" in answer.headers


async def test_the_route_is_documented_with_its_body_answer_and_errors(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][ME]["delete"]

    assert operation["security"]
    assert {"202", "401", "403", "413", "422", "503"} <= set(operation["responses"])
    accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert accepted == {"$ref": "#/components/schemas/AccountDeletionAcceptedOut"}
    assert operation["requestBody"]["required"] is True
    schemas = document["components"]["schemas"]
    body = schemas["DeleteAccountIn"]
    assert body["required"] == ["current_password"]
    assert body["additionalProperties"] is False
    assert body["properties"]["current_password"]["maxLength"] == 128
    message = schemas["AccountDeletionAcceptedOut"]["properties"]["message"]["default"]
    assert "being erased" in message
