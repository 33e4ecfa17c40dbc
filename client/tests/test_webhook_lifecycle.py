"""Webhook lifecycle (ADR 0046) as the client library and the `objectvision` command send it
and read the answers: changing a webhook, disabling and enabling it, and sending it a test
event (`webhook.ping`), with `webhooks ping --wait` following that event's delivery.

The answers come from a real HTTP server on a local port that stands where the gateway
would, answers what each test scripts and keeps every request; the end-to-end suites
(tests/test_cli.py, tests/test_console_browser.py) run the same calls against the real
services and a real receiver.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError, Webhook, WebhookDelivery
from objectvision_client import cli as cli_module
from objectvision_client.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, webhooks_table
from objectvision_devstack.scripted_gateway import ScriptedGateway

HOOK_ID = "7d1f3c9e-0000-4000-8000-000000000001"
HOOKS = "/api/v1/webhooks"
HOOK = f"{HOOKS}/{HOOK_ID}"
ENABLED = {
    "id": HOOK_ID,
    "url": "https://example.com/hooks/objectvision",
    "events": ["job.completed"],
    "created_at": "2026-12-05T04:00:00Z",
    "api_key_id": None,
    "previous_secret_expires_at": None,
    "enabled": True,
    "disabled_at": None,
    "disabled_reason": None,
    "consecutive_failures": 0,
}
DISABLED_BY_OWNER = {
    **ENABLED,
    "enabled": False,
    "disabled_at": "2026-12-05T05:00:00Z",
    "disabled_reason": "owner",
}
PING = {
    "id": "d-ping",
    "webhook_id": HOOK_ID,
    "event_id": "e-ping",
    "event_type": "webhook.ping",
    "state": "pending",
    "attempts": 0,
    "last_attempt_at": None,
    "last_status_code": None,
    "last_error": None,
    "next_attempt_at": "2026-12-05T05:00:00Z",
    "created_at": "2026-12-05T05:00:00Z",
    "delivered_at": None,
    "redelivery_of": None,
}
DELIVERED = {
    **PING,
    "state": "delivered",
    "attempts": 1,
    "last_attempt_at": "2026-12-05T05:00:01Z",
    "last_status_code": 200,
    "next_attempt_at": None,
    "delivered_at": "2026-12-05T05:00:01Z",
}
DEAD = {
    **PING,
    "state": "dead",
    "attempts": 1,
    "last_attempt_at": "2026-12-05T05:00:01Z",
    "last_status_code": 410,
    "last_error": "receiver answered 410",
    "next_attempt_at": None,
}
RETRYING = {
    **PING,
    "attempts": 2,
    "last_attempt_at": "2026-12-05T05:00:01Z",
    "last_error": "connection refused",
}


def _page(*deliveries: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    count = len(deliveries)
    return {"items": list(deliveries), "total": count if total is None else total, "limit": 100}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    api_key: str | None


class Gateway(ScriptedGateway[Sent]):
    """What the stand-in gateway answers each `METHOD path` (in turn; the last one again once
    the script runs out), and every request it was sent."""

    def requests(self) -> list[tuple[str, str, Any]]:
        return [(sent.method, sent.path, sent.body) for sent in self.sent]


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        target = urlsplit(request.path)
        status, body = stand_in.answer(
            Sent(
                request.command,
                target.path,
                parse_qs(target.query),
                json.loads(raw) if raw else None,
                request.headers.get("X-API-Key"),
            )
        )
        payload = b"" if body is None else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


# The library


def test_an_update_sends_only_the_fields_given_and_answers_the_webhook_as_it_now_is(
    gateway: Gateway,
) -> None:
    moved = {**ENABLED, "url": "https://example.com/new", "events": []}
    gateway.answers(f"PATCH {HOOK}", (200, DISABLED_BY_OWNER), (200, moved), (200, ENABLED))
    with Client(gateway.url, api_key="ov_test") as client:
        disabled = client.update_webhook(HOOK_ID, enabled=False)
        changed = client.update_webhook(HOOK_ID, url="https://example.com/new", events=[])
        enabled = client.update_webhook(HOOK_ID, events=("job.completed",), enabled=True)
    assert gateway.requests() == [
        ("PATCH", HOOK, {"enabled": False}),
        ("PATCH", HOOK, {"url": "https://example.com/new", "events": []}),
        ("PATCH", HOOK, {"events": ["job.completed"], "enabled": True}),
    ]
    assert {sent.api_key for sent in gateway.sent} == {"ov_test"}
    assert (disabled.enabled, disabled.disabled_reason) == (False, "owner")
    assert disabled.disabled_at == datetime(2026, 12, 5, 5, tzinfo=UTC)
    assert (changed.url, changed.events) == ("https://example.com/new", ())
    assert (enabled.enabled, enabled.disabled_at, enabled.disabled_reason) == (True, None, None)


def test_an_update_with_nothing_to_change_is_refused_before_anything_is_sent(
    gateway: Gateway,
) -> None:
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ValueError) as refused:
        client.update_webhook(HOOK_ID)
    assert "nothing to change" in str(refused.value)
    assert gateway.sent == []


def test_an_update_to_a_url_another_webhook_has_is_a_conflict(gateway: Gateway) -> None:
    taken = {"error": {"code": "already_exists", "message": "a webhook for that URL exists"}}
    gateway.answers(f"PATCH {HOOK}", (409, taken))
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as err:
        client.update_webhook(HOOK_ID, url="https://example.com/taken")
    assert (err.value.status, err.value.code) == (409, "already_exists")


def test_a_ping_posts_nothing_and_answers_its_pending_delivery(gateway: Gateway) -> None:
    gateway.answers(f"POST {HOOK}/ping", (202, PING))

    async def ping() -> WebhookDelivery:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.ping_webhook(HOOK_ID)

    with Client(gateway.url, api_key="ov_test") as client:
        queued = client.ping_webhook(HOOK_ID)
    assert asyncio.run(ping()) == queued
    assert gateway.requests() == [("POST", f"{HOOK}/ping", None)] * 2
    assert (queued.id, queued.event_type, queued.state) == ("d-ping", "webhook.ping", "pending")
    assert queued.raw == PING


def test_the_async_client_updates_a_webhook_too(gateway: Gateway) -> None:
    gateway.answers(f"PATCH {HOOK}", (200, DISABLED_BY_OWNER))

    async def disable() -> Webhook:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.update_webhook(HOOK_ID, enabled=False)

    assert asyncio.run(disable()).disabled_reason == "owner"
    assert gateway.requests() == [("PATCH", HOOK, {"enabled": False})]


def test_a_webhook_from_a_server_before_the_lifecycle_reads_as_enabled() -> None:
    older = {key: ENABLED[key] for key in ("id", "url", "events", "created_at")}
    hook = Webhook.from_json(older)
    assert (hook.enabled, hook.disabled_at, hook.disabled_reason) == (True, None, None)
    assert hook.consecutive_failures == 0


# The table


def test_the_webhooks_table_says_whether_each_is_enabled_and_why_not() -> None:
    hooks = [
        Webhook.from_json(ENABLED),
        Webhook.from_json({**ENABLED, "id": "w-2", "consecutive_failures": 3}),
        Webhook.from_json({**DISABLED_BY_OWNER, "id": "w-3"}),
        Webhook.from_json(
            {
                **DISABLED_BY_OWNER,
                "id": "w-4",
                "disabled_reason": "failing",
                "consecutive_failures": 20,
                "api_key_id": "k-1",
            }
        ),
    ]
    header, *rows = webhooks_table(hooks).splitlines()
    assert header.split() == ["ID", "URL", "EVENTS", "STATE", "CREATED", "MADE", "WITH"]
    states = [row.split("job.completed")[1].strip().split("  ")[0] for row in rows]
    assert states == [
        "enabled",
        "enabled, 3 failed in a row",
        "disabled (owner)",
        "disabled (failing), 20 failed in a row",
    ]
    assert rows[3].endswith("API key k-1") and rows[0].endswith("session")


# The command line


@pytest.fixture
def api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI uses an API key (no saved session), and polls without waiting long."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")
    monkeypatch.setattr(cli_module, "DELIVERY_POLL_SECONDS", 0.01)


def _cli(gateway: Gateway, *args: str) -> int:
    return main(["--api-url", gateway.url, "webhooks", *args])


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        (["--disable"], {"enabled": False}),
        (["--enable"], {"enabled": True}),
        (
            ["--event", "job.completed", "--event", "job.failed"],
            {"events": ["job.completed", "job.failed"]},
        ),
        (["--all-events"], {"events": []}),
        (
            ["--url", "https://example.com/new", "--event", "job.cancelled", "--enable"],
            {"url": "https://example.com/new", "events": ["job.cancelled"], "enabled": True},
        ),
    ],
)
def test_update_sends_what_its_options_change(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    sent: dict[str, Any],
) -> None:
    gateway.answers(f"PATCH {HOOK}", (200, ENABLED))
    assert _cli(gateway, "update", HOOK_ID, *options) == EXIT_OK, capsys.readouterr().err
    assert gateway.requests() == [("PATCH", HOOK, sent)]


def test_update_says_how_the_webhook_now_stands_and_what_to_do_next(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"PATCH {HOOK}", (200, DISABLED_BY_OWNER), (200, ENABLED))
    assert _cli(gateway, "update", HOOK_ID, "--disable") == EXIT_OK
    disabled = capsys.readouterr().err
    assert f"Webhook {HOOK_ID} for {ENABLED['url']}: disabled (owner); events: job.completed." in (
        disabled
    )
    assert f"`objectvision webhooks update {HOOK_ID} --enable`" in disabled
    assert _cli(gateway, "update", HOOK_ID, "--enable", "--json") == EXIT_OK
    enabled = capsys.readouterr()
    assert json.loads(enabled.out) == ENABLED
    assert f"`objectvision webhooks deliveries {HOOK_ID} --state dead`" in enabled.err


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ([], "nothing to change: give --url, --event, --all-events, --enable or --disable"),
        (["--enable", "--disable"], "not allowed with argument"),
        (["--event", "job.completed", "--all-events"], "not allowed with argument"),
        (["--event", "job.started"], "invalid choice: 'job.started'"),
    ],
)
def test_update_without_a_change_or_with_contradicting_options_is_a_usage_error(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
) -> None:
    try:
        status = _cli(gateway, "update", HOOK_ID, *options)
    except SystemExit as exited:  # argparse's own refusals
        status = int(str(exited.code))
    assert status == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert gateway.sent == []


def test_ping_without_wait_prints_the_queued_deliverys_id(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {HOOK}/ping", (202, PING))
    assert _cli(gateway, "ping", HOOK_ID) == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == "d-ping\n"
    assert f"Test event queued for webhook {HOOK_ID}: delivery d-ping." in printed.err
    assert [sent.method for sent in gateway.sent] == ["POST"]


def test_ping_wait_follows_the_delivery_until_the_receiver_answers(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    older = {**DELIVERED, "id": "d-older", "event_type": "job.completed"}
    gateway.answers(f"POST {HOOK}/ping", (202, PING))
    gateway.answers(
        f"GET {HOOK}/deliveries",
        (200, _page(PING, older)),
        (200, _page(RETRYING, older)),
        (200, _page(DELIVERED, older)),
    )
    assert _cli(gateway, "ping", HOOK_ID, "--wait") == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == "d-ping\n"
    assert "Test event delivered: the receiver answered HTTP 200 (1 attempt)." in printed.err
    assert [sent.method for sent in gateway.sent] == ["POST", "GET", "GET", "GET"]


def test_ping_wait_fails_with_the_receivers_answer_when_the_delivery_is_given_up(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {HOOK}/ping", (202, PING))
    gateway.answers(f"GET {HOOK}/deliveries", (200, _page(DEAD)))
    assert _cli(gateway, "ping", HOOK_ID, "--wait", "--json") == EXIT_FAILED
    printed = capsys.readouterr()
    assert json.loads(printed.out) == DEAD
    assert (
        "error: test event not delivered, given up after 1 attempt: receiver answered 410"
        in printed.err
    )


def test_ping_wait_gives_up_waiting_and_says_where_to_look(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """--wait-seconds alone waits too: it is how long --wait waits."""
    gateway.answers(f"POST {HOOK}/ping", (202, PING))
    gateway.answers(f"GET {HOOK}/deliveries", (200, _page(RETRYING)))
    status = _cli(gateway, "ping", HOOK_ID, "--wait-seconds", "0.2")
    error = capsys.readouterr().err
    assert status == EXIT_FAILED
    assert "error: the test event's delivery d-ping is still pending after 0.2 s" in error
    assert "2 attempts so far, the last failed: connection refused" in error
    assert f"`objectvision webhooks deliveries {HOOK_ID}`" in error


def test_ping_wait_looks_through_the_pages_for_the_delivery(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Other events may have come in since the ping: newest first, it is not on page one."""
    newer = [
        {**DELIVERED, "id": f"d-{index}", "event_type": "job.progress"} for index in range(100)
    ]
    gateway.answers(f"POST {HOOK}/ping", (202, PING))
    gateway.answers(
        f"GET {HOOK}/deliveries",
        (200, _page(*newer, total=101)),
        (200, {**_page(DELIVERED, total=101), "offset": 100}),
    )
    assert _cli(gateway, "ping", HOOK_ID, "--wait") == EXIT_OK, capsys.readouterr().err
    offsets = [sent.query["offset"] for sent in gateway.sent if sent.method == "GET"]
    assert offsets == [["0"], ["100"]]
