"""Signed-in sessions (ADR 0035) as the client reads them and the CLI shows and picks them:
pure parsing and formatting. tests/test_sessions_e2e.py runs the calls against the real
services."""

import pytest

from objectvision_client.cli import CliError, listed_session, sessions_table
from objectvision_client.models import Session

LAPTOP = {
    "id": "0f1e2d3c-0000-4000-8000-000000000001",
    "started_at": "2026-12-05T08:00:00Z",
    "last_active_at": "2026-12-05T09:30:00Z",
    "expires_at": "2026-12-19T09:30:00Z",
    "client_ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "second_factor": True,
    "current": True,
}
# Opened before the server recorded logins: no start, no address, no device.
OLD_PHONE = {
    **LAPTOP,
    "id": "0f1e9999-0000-4000-8000-000000000002",
    "started_at": None,
    "client_ip": "",
    "user_agent": "",
    "second_factor": False,
    "current": False,
}


def _sessions() -> list[Session]:
    return [Session.from_json(LAPTOP), Session.from_json(OLD_PHONE)]


def test_a_session_reads_its_times_and_keeps_its_body() -> None:
    laptop, old_phone = _sessions()
    assert laptop.last_active_at.tzinfo is not None
    assert laptop.started_at is not None and laptop.started_at < laptop.last_active_at
    assert old_phone.started_at is None
    assert laptop.raw == LAPTOP


def test_the_table_shows_the_start_of_each_id_and_marks_this_one() -> None:
    header, laptop, old_phone = sessions_table(_sessions()).splitlines()
    assert header.split() == [
        "ID",
        "STARTED",
        "LAST",
        "ACTIVE",
        "IP",
        "USER",
        "AGENT",
        "2FA",
        "CURRENT",
    ]
    assert laptop.startswith("0f1e2d3c  ") and laptop.endswith("yes  this one")
    assert "Mozilla/5.0 (X11; Linux x86_64) Apple..." in laptop
    assert old_phone.startswith("0f1e9999  -  ") and old_phone.endswith("no")


@pytest.mark.parametrize("wanted", ["0f1e2d3c", "0F1E2D3C", LAPTOP["id"]])
def test_a_session_is_picked_by_its_id_or_a_unique_start_of_it(wanted: str) -> None:
    assert listed_session(_sessions(), wanted).id == LAPTOP["id"]


@pytest.mark.parametrize(
    ("wanted", "said"),
    [
        ("0f1e", "2 sessions have ids starting with '0f1e': give more of it"),
        ("", "`objectvision sessions list` shows them"),
        ("ffff", "none of your signed-in sessions has the id 'ffff'"),
    ],
)
def test_an_ambiguous_or_unknown_id_is_refused(wanted: str, said: str) -> None:
    with pytest.raises(CliError, match=said):
        listed_session(_sessions(), wanted)
