"""Two-factor authentication (ADR 0034) as the client library and the `objectvision` command
send it and read the answers: what each call puts on the wire, and how the CLI asks for a
code (from --code, or at a terminal) when the server wants one.

The answers come from a real HTTP server on a local port that stands where the gateway
would, answers what each test scripts and keeps every request; the end-to-end suite
(tests/test_two_factor_e2e.py) runs the same calls against the real services.
"""

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError, TokenPair
from objectvision_client.cli import EXIT_OK, EXIT_USAGE, main
from objectvision_client.credentials import CredentialStore, SavedSession
from objectvision_devstack.scripted_gateway import ScriptedGateway

PASSWORD = "correct horse battery"
SECRET = "JBSWY3DPEHPK3PXP"
URI = f"otpauth://totp/ObjectVision:ada%40example.com?secret={SECRET}&issuer=ObjectVision"
ENROLLMENT = {"secret": SECRET, "otpauth_uri": URI, "qr_svg": "data:image/svg+xml;base64,PHN2Zz4="}
CODES = [f"aaaaa-bbbbb-ccccc-{index:05d}" for index in range(10)]
TOKENS = {"access_token": "access", "refresh_token": "refresh", "expires_in": 900}
USER = {
    "id": "u-1",
    "email": "ada@example.com",
    "email_verified": True,
    "name": "Ada",
    "created_at": "2026-12-05T04:00:00Z",
}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": "req-1"}}


SECOND_FACTOR_REQUIRED = _error(
    "second_factor_required", "this account uses two-factor authentication"
)


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    body: Any
    authorization: str | None


class Gateway(ScriptedGateway[Sent]):
    """What the stand-in gateway answers each `METHOD path` (in turn; the last one again once
    the script runs out), and every request it was sent."""


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        sent = Sent(
            request.command,
            request.path.split("?")[0],
            json.loads(raw) if raw else None,
            request.headers.get("Authorization"),
        )
        status, body = stand_in.answer(sent)
        payload = b"" if body is None else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


def _signed_in(gateway: Gateway) -> Client:
    return Client(gateway.url, tokens=TokenPair(access_token="access", refresh_token="refresh"))


def test_a_login_sends_the_code_only_when_given_and_keeps_the_tokens(gateway: Gateway) -> None:
    gateway.answers("POST /api/v1/auth/login", (401, SECOND_FACTOR_REQUIRED), (200, TOKENS))
    saved: list[TokenPair | None] = []
    with Client(gateway.url, on_tokens=saved.append) as client:
        with pytest.raises(ObjectVisionError) as refused:
            client.login("ada@example.com", PASSWORD)
        tokens = client.login("ada@example.com", PASSWORD, "123456")
    assert (refused.value.status, refused.value.code) == (401, "second_factor_required")
    first, second = gateway.sent
    assert first.body == {"email": "ada@example.com", "password": PASSWORD}
    assert second.body == {**first.body, "second_factor_code": "123456"}
    assert tokens.access_token == "access" and saved == [tokens]


def test_the_async_client_logs_in_with_a_code_too(gateway: Gateway) -> None:
    gateway.answers("POST /api/v1/auth/login", (200, TOKENS))

    async def log_in() -> TokenPair | None:
        async with AsyncClient(gateway.url) as client:
            await client.login("ada@example.com", PASSWORD, second_factor_code="654321")
            return client.tokens

    assert asyncio.run(log_in()) == TokenPair.from_json(TOKENS)
    assert gateway.sent[0].body["second_factor_code"] == "654321"


def test_enrolment_confirmation_new_codes_and_turning_off_are_sent_as_documented(
    gateway: Gateway,
) -> None:
    gateway.answers("POST /api/v1/users/me/two-factor", (201, ENROLLMENT))
    gateway.answers("POST /api/v1/users/me/two-factor/confirm", (200, {"recovery_codes": CODES}))
    gateway.answers(
        "POST /api/v1/users/me/two-factor/recovery-codes", (200, {"recovery_codes": CODES[:2]})
    )
    gateway.answers("DELETE /api/v1/users/me/two-factor", (204, None))
    gateway.answers("DELETE /api/v1/users/u%2F2/two-factor", (204, None))
    with _signed_in(gateway) as client:
        enrollment = client.start_two_factor(PASSWORD)
        confirmed = client.confirm_two_factor("123456")
        renewed = client.regenerate_recovery_codes(PASSWORD, CODES[0])
        turned_off = client.disable_two_factor(PASSWORD, "654321")
        turned_off_for = client.disable_two_factor_for("u/2", "the admin's password")
    assert (enrollment.secret, enrollment.otpauth_uri) == (SECRET, URI)
    assert enrollment.qr_svg.startswith("data:image/svg+xml")
    assert confirmed == CODES and renewed == CODES[:2]
    assert turned_off is None and turned_off_for is None
    assert [(sent.method, sent.path, sent.body) for sent in gateway.sent] == [
        ("POST", "/api/v1/users/me/two-factor", {"current_password": PASSWORD}),
        ("POST", "/api/v1/users/me/two-factor/confirm", {"code": "123456"}),
        (
            "POST",
            "/api/v1/users/me/two-factor/recovery-codes",
            {"current_password": PASSWORD, "code": CODES[0]},
        ),
        ("DELETE", "/api/v1/users/me/two-factor", {"current_password": PASSWORD, "code": "654321"}),
        ("DELETE", "/api/v1/users/u%2F2/two-factor", {"current_password": "the admin's password"}),
    ]
    assert {sent.authorization for sent in gateway.sent} == {"Bearer access"}


def test_the_account_says_whether_two_factor_is_on(gateway: Gateway) -> None:
    gateway.answers(
        "GET /api/v1/users/me", (200, USER), (200, {**USER, "two_factor_enabled": True})
    )
    with _signed_in(gateway) as client:
        before, after = client.me(), client.me()
    assert (before.two_factor_enabled, after.two_factor_enabled) == (False, True)


def test_recovery_codes_in_another_shape_are_an_unexpected_response(gateway: Gateway) -> None:
    gateway.answers("POST /api/v1/users/me/two-factor/confirm", (200, {"codes": CODES}))
    with _signed_in(gateway) as client, pytest.raises(ObjectVisionError) as raised:
        client.confirm_two_factor("123456")
    assert raised.value.code == "unexpected_response"
    assert "recovery_codes: Field required" in raised.value.message


# The command line


class Terminal(io.StringIO):
    """Standard input or output as a person's terminal: what they type is the text given."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's saved sessions go here, and standard input is no terminal unless a test
    says otherwise."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("OBJECTVISION_API_KEY", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return tmp_path


def _cli(gateway: Gateway, *args: str) -> int:
    return main(["--api-url", gateway.url, *args])


def _log_in_saved(gateway: Gateway) -> None:
    CredentialStore().save(gateway.url, SavedSession("ada@example.com", "access", "refresh"))


def test_login_with_code_sends_it_in_its_one_request(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers("POST /api/v1/auth/login", (200, TOKENS))
    status = _cli(
        gateway, "login", "--email", "ada@example.com", "--password", PASSWORD, "--code", "123456"
    )
    assert status == EXIT_OK, capsys.readouterr().err
    assert gateway.sent[0].body["second_factor_code"] == "123456"
    saved = CredentialStore().load(gateway.url)
    assert saved is not None and saved.access_token == "access"


def test_login_asks_at_the_terminal_for_the_code_the_server_wants(
    gateway: Gateway,
    config_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway.answers("POST /api/v1/auth/login", (401, SECOND_FACTOR_REQUIRED), (200, TOKENS))
    monkeypatch.setattr("sys.stdin", Terminal("654321\n"))
    status = _cli(gateway, "login", "--email", "ada@example.com", "--password", PASSWORD)
    assert status == EXIT_OK, capsys.readouterr().err
    first, second = gateway.sent
    assert "second_factor_code" not in first.body
    assert second.body["second_factor_code"] == "654321"
    assert "Authentication code" in capsys.readouterr().out


def test_login_without_a_terminal_or_code_says_to_pass_code(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers("POST /api/v1/auth/login", (401, SECOND_FACTOR_REQUIRED))
    status = _cli(gateway, "login", "--email", "ada@example.com", "--password", PASSWORD)
    error = capsys.readouterr().err
    assert status == EXIT_USAGE
    assert "this account has two-factor authentication on: pass --code" in error
    assert len(gateway.sent) == 1
    assert CredentialStore().load(gateway.url) is None


def test_enable_without_a_terminal_prints_the_secret_and_confirms_in_a_second_run(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_in_saved(gateway)
    gateway.answers("POST /api/v1/users/me/two-factor", (201, ENROLLMENT))
    gateway.answers("POST /api/v1/users/me/two-factor/confirm", (200, {"recovery_codes": CODES}))

    assert _cli(gateway, "account", "two-factor", "enable", "--password", PASSWORD) == EXIT_OK
    started = capsys.readouterr()
    assert started.out.splitlines() == [f"Secret: {SECRET}", f"URI: {URI}"]
    assert "`objectvision account two-factor enable --code CODE`" in started.err
    assert [sent.path for sent in gateway.sent] == ["/api/v1/users/me/two-factor"]

    assert _cli(gateway, "account", "two-factor", "enable", "--code", "123456") == EXIT_OK
    confirmed = capsys.readouterr()
    assert confirmed.out.splitlines() == CODES
    assert "Store these recovery codes now" in confirmed.err
    assert gateway.sent[-1].body == {"code": "123456"}


def test_enable_at_a_terminal_shows_a_qr_code_and_asks_for_the_first_code(
    gateway: Gateway,
    config_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("segno")
    _log_in_saved(gateway)
    gateway.answers("POST /api/v1/users/me/two-factor", (201, ENROLLMENT))
    gateway.answers("POST /api/v1/users/me/two-factor/confirm", (200, {"recovery_codes": CODES}))
    screen = Terminal()
    monkeypatch.setattr("sys.stdin", Terminal("123456\n"))
    monkeypatch.setattr("sys.stdout", screen)

    assert _cli(gateway, "account", "two-factor", "enable", "--password", PASSWORD) == EXIT_OK
    shown = screen.getvalue()
    assert f"Secret: {SECRET}" in shown and f"URI: {URI}" in shown
    assert "\N{FULL BLOCK}" in shown, "no QR code drawn"
    # The code typed is not echoed here, as a terminal would: the codes follow the question.
    assert shown.endswith(": " + "\n".join(CODES) + "\n")
    assert gateway.sent[-1].body == {"code": "123456"}


def test_enable_with_a_code_and_nothing_started_says_what_to_run(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_in_saved(gateway)
    gateway.answers(
        "POST /api/v1/users/me/two-factor/confirm",
        (409, _error("no_two_factor_enrollment", "no authenticator app is being enrolled")),
    )
    assert _cli(gateway, "account", "two-factor", "enable", "--code", "123456") == 1
    assert "run `objectvision account two-factor enable` without --code first" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("action", ["disable", "recovery-codes"])
def test_disable_and_new_codes_need_a_code_before_anything_is_sent(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    _log_in_saved(gateway)
    assert _cli(gateway, "account", "two-factor", action, "--password", PASSWORD) == EXIT_USAGE
    assert "no code given: pass --code" in capsys.readouterr().err
    assert gateway.sent == []


def test_disable_and_new_codes_send_the_password_and_code(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_in_saved(gateway)
    gateway.answers("DELETE /api/v1/users/me/two-factor", (204, None))
    gateway.answers(
        "POST /api/v1/users/me/two-factor/recovery-codes", (200, {"recovery_codes": CODES})
    )
    renewed = _cli(
        gateway,
        "account",
        "two-factor",
        "recovery-codes",
        "--password",
        PASSWORD,
        "--code",
        CODES[0],
    )
    assert renewed == EXIT_OK
    assert capsys.readouterr().out.splitlines() == CODES
    disabled = _cli(
        gateway, "account", "two-factor", "disable", "--password", PASSWORD, "--code", "123456"
    )
    assert disabled == EXIT_OK
    assert "Two-factor authentication is off" in capsys.readouterr().err
    assert [sent.body for sent in gateway.sent] == [
        {"current_password": PASSWORD, "code": CODES[0]},
        {"current_password": PASSWORD, "code": "123456"},
    ]


def test_whoami_says_when_two_factor_is_on(
    gateway: Gateway, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_in_saved(gateway)
    gateway.answers("GET /api/v1/users/me", (200, {**USER, "two_factor_enabled": True}))
    assert _cli(gateway, "whoami") == EXIT_OK
    assert capsys.readouterr().out.strip() == "Ada <ada@example.com> (id u-1, two-factor on)"
