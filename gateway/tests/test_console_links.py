"""Links a person follows (from an email, a webhook, or typed) open the console's page."""

import uuid

import httpx
import pytest


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/jobs/{id}", "/#/jobs/{id}"),
        ("/detections/{id}", "/#/detections/{id}"),
        ("/settings", "/#/settings"),
        ("/jobs", "/#/jobs"),
    ],
)
async def test_a_path_link_redirects_to_the_consoles_page(
    client: httpx.AsyncClient, path: str, fragment: str
) -> None:
    """Job-report emails sent before the console had deep links point at `/jobs/<id>`."""
    object_id = str(uuid.uuid4())
    answer = await client.get(path.format(id=object_id))
    assert answer.status_code == 307
    assert answer.headers["location"] == fragment.format(id=object_id)


async def test_a_malformed_id_is_the_standard_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/jobs/not-a-job")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
