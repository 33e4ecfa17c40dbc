"""The result cache as a user meets it: the same upload twice is answered once by the model.

A stack of its own with RESULT_CACHE_TTL_SECONDS on (the shared test stack runs without the
cache so that other tests reach inference). The client library reports `cached`, and the CLI
says which files came from the cache; a different option is a different answer, not a hit.
"""

import uuid
from pathlib import Path

from objectvision_client import Client, DetectionParams
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

PASSWORD = "correct horse battery"


def _signed_up(stack: Stack) -> str:
    email = f"cache-{uuid.uuid4().hex[:12]}@example.com"
    with Client(stack.gateway_url) as client:
        client.signup(email, PASSWORD, "Cache")
    return email


def test_the_same_image_twice_is_answered_from_the_cache_the_second_time(
    cached_stack: Stack, unique_bus_jpg: bytes
) -> None:
    email = _signed_up(cached_stack)
    image = ("bus.jpg", unique_bus_jpg)
    with Client(cached_stack.gateway_url) as client:
        client.login(email, PASSWORD)
        first = client.detect_image(image)
        second = client.detect_image(image)
        stricter = client.detect_image(image, DetectionParams(confidence=0.6))
    assert (first.cached, second.cached, stricter.cached) == (False, True, False)
    assert second.objects == first.objects
    assert len(first.objects) == 5
    assert all(obj.confidence >= 0.6 for obj in stricter.objects)


def test_the_cli_says_which_files_came_from_the_cache(
    cached_stack: Stack, unique_bus_jpg: bytes, tmp_path: Path
) -> None:
    email = _signed_up(cached_stack)
    image = tmp_path / "bus-again.jpg"
    image.write_bytes(unique_bus_jpg)
    objectvision = CommandLine(cached_stack.gateway_url, tmp_path / "config")

    objectvision.run("login", "--email", email, "--password", PASSWORD)
    first = objectvision.run("detect", str(image))
    second = objectvision.run("detect", str(image))
    assert "result cache" not in first.stderr
    assert f"{image}: answered from the result cache" in second.stderr
    assert second.stdout == first.stdout
