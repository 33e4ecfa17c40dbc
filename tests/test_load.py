"""Sustained mixed traffic against the whole stack: zero errors, and the figures on record.

LOAD_CONCURRENCY virtual users (default 8) loop for LOAD_SECONDS (default 60) over a
weighted mix of what the product does all day: read the detection history (50%), detect
objects in bus.jpg and store the result (35%), log in (15%; Argon2id, so the most CPU per
request). Every request gets its own X-Forwarded-For, so no rate limit is reached: a 429
counts as an error here, like a 5xx or a connection failure.

The figures go to test-artifacts/load.json (requests/s overall and per operation, latency
percentiles, the machine) for the README. bench/ has the dedicated inference benchmarks;
this is the end-to-end check that the system holds up under steady mixed load.
"""

import asyncio
import json
import os
import platform
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.stack import Stack

PASSWORD = "correct horse battery"
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
CONCURRENCY = int(os.environ.get("LOAD_CONCURRENCY", "8"))
MIX = {"history": 50, "detect": 35, "login": 15}
ARTIFACT = Path(__file__).resolve().parents[1] / "test-artifacts" / "load.json"
SHARED = Path(
    os.environ.get("OBJECTVISION_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared"
)
BUS_JPG = SHARED / "images" / "bus.jpg"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(int(SECONDS) + 300),
    pytest.mark.skipif(not BUS_JPG.exists(), reason=f"{BUS_JPG} not found"),
]


@dataclass
class VirtualUser:
    email: str
    headers: dict[str, str]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def record(self, operation: str, seconds: float, outcome: str, ok: bool) -> None:
        self.latencies.setdefault(operation, []).append(seconds)
        self.statuses[f"{operation} {outcome}"] += 1
        if not ok and len(self.errors) < 20:
            self.errors.append(f"{operation}: {outcome}")

    @property
    def error_count(self) -> int:
        return sum(
            count for key, count in self.statuses.items() if not key.endswith((" 200", " 201"))
        )


async def _virtual_user(client: httpx.AsyncClient) -> VirtualUser:
    email = f"load-{uuid.uuid4().hex}@example.com"
    signed_up = await client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "name": "Load"},
        headers=fresh_network(),
    )
    assert signed_up.status_code == 202, signed_up.text
    return VirtualUser(email=email, headers=await _login(client, email))


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers=fresh_network(),
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _one(
    client: httpx.AsyncClient, user: VirtualUser, operation: str, image: bytes
) -> httpx.Response:
    if operation == "history":
        return await client.get(
            "/api/v1/detect/history", params={"limit": 20}, headers=user.headers
        )
    if operation == "detect":
        return await client.post(
            "/api/v1/detect/image",
            files={"file": ("bus.jpg", image, "image/jpeg")},
            headers=user.headers,
        )
    return await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers=fresh_network(),
    )


async def _run_user(
    client: httpx.AsyncClient, user: VirtualUser, image: bytes, deadline: float, tally: Tally
) -> None:
    rng = random.Random(user.email)
    operations, weights = list(MIX), list(MIX.values())
    while time.monotonic() < deadline:
        operation = rng.choices(operations, weights)[0]
        started = time.perf_counter()
        try:
            response = await _one(client, user, operation, image)
        except httpx.HTTPError as exc:
            tally.record(operation, time.perf_counter() - started, type(exc).__name__, False)
            continue
        elapsed = time.perf_counter() - started
        ok = response.status_code in (200, 201)
        tally.record(operation, elapsed, str(response.status_code), ok)
        if ok and operation == "login":
            user.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(tally: Tally, elapsed: float) -> dict[str, Any]:
    operations = {
        name: {
            "requests": len(values),
            "requests_per_second": round(len(values) / elapsed, 2),
            "latency_ms": {
                "p50": round(_percentile(values, 0.50) * 1000, 1),
                "p95": round(_percentile(values, 0.95) * 1000, 1),
                "p99": round(_percentile(values, 0.99) * 1000, 1),
                "max": round(max(values) * 1000, 1),
            },
        }
        for name, values in sorted(tally.latencies.items())
    }
    total = sum(len(values) for values in tally.latencies.values())
    return {
        "test": "tests/test_load.py",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_seconds": round(elapsed, 1),
        "concurrency": CONCURRENCY,
        "mix_percent": MIX,
        "requests": total,
        "requests_per_second": round(total / elapsed, 2),
        "errors": tally.error_count,
        "statuses": dict(sorted(tally.statuses.items())),
        "operations": operations,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "triton": "local CPU (ONNX Runtime, Python backend)",
        },
    }


async def test_sustained_mixed_traffic_has_no_errors(stack: Stack) -> None:
    image = BUS_JPG.read_bytes()
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as client:
        users = [await _virtual_user(client) for _ in range(CONCURRENCY)]
        warm = await _one(client, users[0], "detect", image)
        assert warm.status_code == 200, warm.text
        tally = Tally()
        started = time.monotonic()
        deadline = started + SECONDS
        await asyncio.gather(*(_run_user(client, user, image, deadline, tally) for user in users))
        elapsed = time.monotonic() - started
    summary = _summary(tally, elapsed)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))  # the figures, in the test log too
    assert summary["requests"] > 0
    assert tally.error_count == 0, (tally.errors, summary["statuses"])
    assert not stack.exited(), stack.exited()
