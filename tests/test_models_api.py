"""Models as a resource, end to end: the REST API, the Python client and the `objectvision`
command against the whole system, with a real Triton serving yolov8n and yolov8n-int8.

Each test signs up its own user. The one that unloads a model through Triton's model control
API does it on a stack with a Triton of its own, and loads the model again before it ends:
Triton's Python backend (the CPU serving here) has crashed on an execute minutes after such a
reload (SIGSEGV in TRITONBACKEND_ModelInstanceExecute, boost::interprocess::lock_exception),
and the shared Triton serves every other suite of the worker.
"""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tritonclient.grpc.aio import InferenceServerClient

from objectvision_client import Client, DetectionParams
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

IMAGES = Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).parents[2] / "shared")) / (
    "images"
)
BUS = IMAGES / "bus.jpg"
PASSWORD = "correct horse battery"
FP32, INT8 = "yolov8n", "yolov8n-int8"


async def _headers(client: httpx.AsyncClient) -> dict[str, str]:
    account = await signed_in(client, prefix="models", name="Modeller", network=fresh_network())
    return account.headers


@pytest.fixture
async def headers(gateway_client: httpx.AsyncClient) -> dict[str, str]:
    return await _headers(gateway_client)


@pytest.fixture(scope="module")
def controlled_stack(own_stack: Callable[..., Stack]) -> Iterator[Stack]:
    """A stack whose Triton is its own, for model control (the module docstring says why)."""
    stack = own_stack(
        database="objectvision_model_control", redis_db=8, extra_env={}, own_triton=True
    )
    with stack.running():
        yield stack


@pytest.fixture
async def controlled_gateway(controlled_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=controlled_stack.gateway_url, timeout=30.0) as client:
        yield client


@pytest.fixture
async def triton_client(controlled_stack: Stack) -> AsyncIterator[InferenceServerClient]:
    async with InferenceServerClient(controlled_stack.triton_url) as client:
        yield client


async def _detect(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/detect/image",
        params=params,
        files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")},
        headers=headers,
    )


async def test_models_lists_what_triton_serves(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await gateway_client.get("/api/v1/models", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["default_model"] == FP32
    listed = {item["name"]: item for item in body["items"]}
    assert set(listed) == {FP32, INT8}
    for name, precision in ((FP32, "fp32"), (INT8, "int8")):
        item = listed[name]
        assert (item["version"], item["task"], item["input_size"]) == ("1", "detect", 640)
        assert (item["precision"], item["device"], item["ready"]) == (precision, "cpu", True)
        assert item["classes"][:6] == ["person", "bicycle", "car", "motorcycle", "airplane", "bus"]
        assert len(item["classes"]) == 80
        assert item["default"] is (name == FP32)


async def test_models_needs_a_caller(gateway_client: httpx.AsyncClient) -> None:
    api_error(await gateway_client.get("/api/v1/models"), 401, "unauthenticated")


async def test_detect_with_each_model_says_which_answered(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    default = await _detect(gateway_client, headers)
    assert default.status_code == 200, default.text
    assert (default.json()["model"], default.json()["model_version"]) == (FP32, "1")
    int8 = await _detect(gateway_client, headers, model=INT8)
    assert int8.status_code == 200, int8.text
    body = int8.json()
    assert (body["model"], body["model_version"]) == (INT8, "1")
    assert body["counts"]["bus"] == 1 and body["counts"]["person"] >= 4
    stored = await gateway_client.get(f"/api/v1/detect/{body['detection_id']}", headers=headers)
    assert (stored.json()["model"], stored.json()["model_version"]) == (INT8, "1")
    history = await gateway_client.get("/api/v1/detect/history", headers=headers)
    assert [item["model"] for item in history.json()["items"]] == [INT8, FP32]


async def test_the_model_may_be_a_form_field(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await gateway_client.post(
        "/api/v1/detect/image",
        data={"model": INT8},
        files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == INT8


async def test_a_batch_job_records_its_model_and_version(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    submitted = await gateway_client.post(
        "/api/v1/detect/batch",
        data={"model": INT8},
        files=[("files", ("bus.jpg", BUS.read_bytes(), "image/jpeg"))],
        headers=headers,
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["model"] == INT8
    deadline = time.monotonic() + 120
    while job["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.3)
        job = (await gateway_client.get(submitted.headers["location"], headers=headers)).json()
    assert (job["status"], job["model"], job["model_version"]) == ("completed", INT8, "1")
    detection_id = job["items"][0]["detection_id"]
    stored = await gateway_client.get(f"/api/v1/detect/{detection_id}", headers=headers)
    assert (stored.json()["model"], stored.json()["model_version"]) == (INT8, "1")


async def test_an_unknown_model_is_404_listing_the_known_ones(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    error = api_error(
        await _detect(gateway_client, headers, model="yolov9-huge"), 404, "unknown_model"
    )
    assert error["message"] == (
        "unknown model 'yolov9-huge'; this deployment serves: yolov8n, yolov8n-int8"
    )
    batch = await gateway_client.post(
        "/api/v1/detect/batch",
        params={"model": "nope"},
        files=[("files", ("bus.jpg", BUS.read_bytes(), "image/jpeg"))],
        headers=headers,
    )
    api_error(batch, 404, "unknown_model")


async def test_a_model_name_that_cannot_exist_is_422(
    gateway_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    api_error(await _detect(gateway_client, headers, model="../etc"), 422, "validation_error")


async def test_a_model_that_is_not_loaded_is_503_with_retry_after(
    controlled_gateway: httpx.AsyncClient, triton_client: InferenceServerClient
) -> None:
    headers = await _headers(controlled_gateway)
    await triton_client.unload_model(INT8)
    try:
        deadline = time.monotonic() + 60
        while await triton_client.is_model_ready(INT8):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        # Options never asked before: the result cache cannot answer (it may, for the same
        # model version, while the model is away: its answers stay right).
        unseen = f"0.2{uuid.uuid4().int % 10**6:06d}"
        response = await _detect(controlled_gateway, headers, model=INT8, confidence=unseen)
        error = api_error(response, 503, "model_not_ready")
        assert f"model '{INT8}' is not ready" in error["message"]
        assert int(response.headers["retry-after"]) >= 1
        listed = (await controlled_gateway.get("/api/v1/models", headers=headers)).json()
        assert {item["name"]: item["ready"] for item in listed["items"]} == {
            FP32: True,
            INT8: False,
        }
        still = await _detect(controlled_gateway, headers)
        assert still.status_code == 200 and still.json()["model"] == FP32
    finally:
        await triton_client.load_model(INT8)
        deadline = time.monotonic() + 120
        while not await triton_client.is_model_ready(INT8):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    again = await _detect(controlled_gateway, headers, model=INT8)
    assert again.status_code == 200, again.text


def _client_user(stack: Stack) -> Client:
    email = f"models-client-{uuid.uuid4().hex}@example.com"
    client = Client(stack.gateway_url, headers=fresh_network())
    client.signup(email, PASSWORD, "Client")
    client.login(email, PASSWORD)
    return client


def test_the_client_lists_models_and_detects_with_one(stack: Stack) -> None:
    with _client_user(stack) as client:
        models = {model.name: model for model in client.models()}
        assert set(models) == {FP32, INT8}
        assert models[FP32].default and models[INT8].precision == "int8"
        result = client.detect_image(BUS, DetectionParams(model=INT8, classes=["bus"]))
        assert (result.model, result.model_version) == (INT8, "1")
        assert [obj.class_name for obj in result.objects] == ["bus"]
        job = client.submit_batch([BUS], DetectionParams(model=INT8))
        done = client.wait_for_job(job.job_id, poll_seconds=0.3, timeout=120)
        assert (done.status, done.model, done.model_version) == ("completed", INT8, "1")


def test_the_cli_lists_models_and_detects_with_one(stack: Stack, tmp_path: Path) -> None:
    email = f"models-cli-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(email, PASSWORD, "CLI")
    objectvision = CommandLine(stack.gateway_url, tmp_path)
    objectvision.run("login", "--email", email, "--password", PASSWORD)
    listed = json.loads(objectvision.run("models", "--json").stdout)
    assert {model["name"]: model["precision"] for model in listed} == {
        FP32: "fp32",
        INT8: "int8",
    }
    table = objectvision.run("models").stdout
    assert f"{FP32} (default)" in table and "int8" in table
    detected = json.loads(objectvision.run("detect", str(BUS), "--model", INT8, "--json").stdout)
    results = detected if isinstance(detected, list) else [detected]
    assert [result["model"] for result in results] == [INT8]
    failed = objectvision.run("detect", str(BUS), "--model", "nope", expect=1).stderr
    assert "unknown model 'nope'" in failed and "yolov8n-int8" in failed
