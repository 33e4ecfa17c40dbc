"""The filtered deletion of the history (DELETE /api/v1/detect/history) as the client library
and `objectvision history delete` send it and read the answers: the history's filters as the
query, `all=true` only for the whole history, nothing sent without a filter, and the command
asking first with the count, calling again while the API says there are more, and saying
what it deleted and what it kept.

The answers come from a real HTTP server on a local port that stands where the gateway
would, answers what each test scripts and keeps every request; the end-to-end suites
(tests/test_cli.py, tests/test_console_browser.py) delete through the real services.
"""

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from objectvision_client import AsyncClient, Client, HistoryDeletion, ObjectVisionError
from objectvision_client.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from objectvision_devstack.scripted_gateway import ScriptedGateway

HISTORY = "/api/v1/detect/history"
SUMMARY = f"{HISTORY}/summary"
DETECTION_ID = "3f6c1d2e-0000-4000-8000-000000000001"
ALL_DELETED = {"deleted": 2, "kept_in_unfinished_jobs": 0, "more": False}
TWELVE = {"detections": 12, "objects": 40, "class_counts": {"person": 30, "bus": 10}}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]


class Gateway(ScriptedGateway[Sent]):
    """What the stand-in gateway answers each `METHOD path` (in turn; the last one again once
    the script runs out), and every request it was sent."""

    def requests(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [(sent.method, sent.path, sent.query) for sent in self.sent]


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        target = urlsplit(request.path)
        status, body = stand_in.answer(Sent(request.command, target.path, parse_qs(target.query)))
        payload = b"" if body is None else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


# The library


def test_a_deletion_sends_the_historys_filters_and_reads_what_went(gateway: Gateway) -> None:
    answer = {"deleted": 2, "kept_in_unfinished_jobs": 1, "more": False}
    gateway.answers(f"DELETE {HISTORY}", (200, answer))
    with Client(gateway.url, api_key="ov_test") as client:
        deletion = client.delete_history(
            class_name="person",
            since=datetime(2026, 11, 1, tzinfo=UTC),
            until=datetime(2026, 12, 1, tzinfo=UTC),
            metadata={"camera": "test-rig", "site": "north"},
            filename="gate",
        )
    assert gateway.requests() == [
        (
            "DELETE",
            HISTORY,
            {
                "class_name": ["person"],
                "filename": ["gate"],
                "since": ["2026-11-01T00:00:00+00:00"],
                "until": ["2026-12-01T00:00:00+00:00"],
                "metadata": ["camera:test-rig", "site:north"],
            },
        )
    ]
    assert deletion == HistoryDeletion(deleted=2, kept_in_unfinished_jobs=1, more=False)
    assert deletion.raw == answer


def test_the_whole_history_is_asked_for_with_all_and_no_filter(gateway: Gateway) -> None:
    gateway.answers(f"DELETE {HISTORY}", (200, ALL_DELETED))

    async def delete_everything() -> HistoryDeletion:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.delete_history(everything=True)

    assert asyncio.run(delete_everything()).deleted == 2
    assert gateway.requests() == [("DELETE", HISTORY, {"all": ["true"]})]


@pytest.mark.parametrize(
    ("filters", "refusal"),
    [
        ({}, "no filter given"),
        ({"metadata": {}, "filename": "", "class_name": None}, "no filter given"),
        ({"everything": True, "metadata": {"camera": "test-rig"}}, "leave out the filters"),
    ],
)
def test_no_filter_without_everything_or_both_is_refused_before_anything_is_sent(
    gateway: Gateway, filters: dict[str, Any], refusal: str
) -> None:
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ValueError) as refused:
        client.delete_history(**filters)
    assert refusal in str(refused.value)
    assert gateway.sent == []


def test_one_call_is_one_request_and_its_answer_says_whether_more_remain(
    gateway: Gateway,
) -> None:
    """The library does not loop: the caller calls again while `more` (the CLI does)."""
    gateway.answers(
        f"DELETE {HISTORY}", (200, {"deleted": 5000, "kept_in_unfinished_jobs": 0, "more": True})
    )
    with Client(gateway.url, api_key="ov_test") as client:
        first = client.delete_history(filename="gate")
    assert (first.deleted, first.more) == (5000, True)
    assert len(gateway.sent) == 1


def test_a_key_without_results_write_is_refused_by_the_api(gateway: Gateway) -> None:
    lacking = {"error": {"code": "insufficient_scope", "message": "needs results:write"}}
    gateway.answers(f"DELETE {HISTORY}", (403, lacking))
    with Client(gateway.url, api_key="ov_read") as client, pytest.raises(ObjectVisionError) as err:
        client.delete_history(metadata={"camera": "test-rig"})
    assert (err.value.status, err.value.code) == (403, "insufficient_scope")


# The command line


class Terminal(io.StringIO):
    """Standard input as a person's terminal: what they type is the text given."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI uses an API key (no saved session), and standard input is no terminal unless
    a test says otherwise."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


def _cli(gateway: Gateway, *args: str) -> int:
    try:
        return main(["--api-url", gateway.url, "history", *args])
    except SystemExit as exited:  # argparse's own refusals
        return int(str(exited.code))


def test_delete_with_filters_calls_again_while_there_are_more_and_says_what_went(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(
        f"DELETE {HISTORY}",
        (200, {"deleted": 5000, "kept_in_unfinished_jobs": 3, "more": True}),
        (200, {"deleted": 12, "kept_in_unfinished_jobs": 3, "more": False}),
    )
    options = ["--meta", "camera=test-rig", "--until", "2026-12-01", "--yes", "--json"]
    assert _cli(gateway, "delete", *options) == EXIT_OK
    filters = {"metadata": ["camera:test-rig"], "until": ["2026-12-01T00:00:00"]}
    assert gateway.requests() == [("DELETE", HISTORY, filters)] * 2
    printed = capsys.readouterr()
    # The kept count is the state after the last call, not a sum over the calls.
    assert json.loads(printed.out) == {"deleted": 5012, "kept_in_unfinished_jobs": 3, "more": False}
    assert "Deleted 5012 detections with their images." in printed.err
    assert (
        "Kept 3 detections matching metadata camera=test-rig, until 2026-12-01 00:00:00: their "
        "jobs are still pending or processing. Cancel the jobs or wait for them to finish, then "
        "delete again." in printed.err
    )


def test_delete_takes_the_filters_before_the_action_too_and_all_for_everything(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"DELETE {HISTORY}", (200, ALL_DELETED))
    assert _cli(gateway, "--name", "gate", "--class", "bus", "delete", "--yes") == EXIT_OK
    assert _cli(gateway, "delete", "--all", "--yes") == EXIT_OK
    assert gateway.requests() == [
        ("DELETE", HISTORY, {"class_name": ["bus"], "filename": ["gate"]}),
        ("DELETE", HISTORY, {"all": ["true"]}),
    ]
    assert capsys.readouterr().out == ""


def test_delete_with_an_id_deletes_that_detection_alone(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"DELETE /api/v1/detect/{DETECTION_ID}", (204, None))
    assert _cli(gateway, "delete", DETECTION_ID) == EXIT_OK
    assert gateway.requests() == [("DELETE", f"/api/v1/detect/{DETECTION_ID}", {})]
    assert f"Detection {DETECTION_ID} deleted, with its image." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ([DETECTION_ID, "--meta", "camera=test-rig"], "give a detection's ID or filters"),
        ([DETECTION_ID, "--all"], "give a detection's ID or filters"),
        ([], "give a detection's ID, or filters"),
        (["--yes"], "--all deletes the whole history"),
        (["--all", "--name", "gate", "--yes"], "leave out the filters, or --all"),
        (["--meta", "camera=test-rig"], "cannot be undone: confirm with --yes"),
        (["--all"], "cannot be undone: confirm with --yes"),
        (["--meta", "camera"], "is not KEY=VALUE"),
    ],
)
def test_delete_without_one_clear_choice_is_a_usage_error_and_sends_nothing(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
) -> None:
    assert _cli(gateway, "delete", *options) == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert gateway.sent == []


def test_delete_at_a_terminal_asks_with_the_count_and_deletes_on_yes(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway.answers(f"GET {SUMMARY}", (200, TWELVE))
    gateway.answers(f"DELETE {HISTORY}", (200, {**ALL_DELETED, "deleted": 12}))
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert _cli(gateway, "delete", "--meta", "camera=test-rig") == EXIT_OK
    filters = {"metadata": ["camera:test-rig"]}
    assert gateway.requests() == [("GET", SUMMARY, filters), ("DELETE", HISTORY, filters)]
    printed = capsys.readouterr()
    assert printed.out == (
        "Delete 12 detections matching metadata camera=test-rig, with their images? "
        "This cannot be undone. [y/N] "
    )
    assert "Deleted 12 detections with their images." in printed.err


def test_delete_at_a_terminal_deletes_nothing_unless_the_answer_is_yes(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway.answers(f"GET {SUMMARY}", (200, TWELVE))
    monkeypatch.setattr("sys.stdin", Terminal("\n"))
    assert _cli(gateway, "delete", "--all") == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out.startswith("Delete all 12 detections in your history, with their images?")
    assert "not confirmed: nothing was deleted" in printed.err
    assert [sent.method for sent in gateway.sent] == ["GET"]


def test_delete_at_a_terminal_asks_nothing_when_nothing_matches(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway.answers(f"GET {SUMMARY}", (200, {"detections": 0, "objects": 0, "class_counts": {}}))
    monkeypatch.setattr("sys.stdin", Terminal(""))
    assert _cli(gateway, "delete", "--name", "gate") == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "No detections matching file name containing 'gate': nothing to delete." in printed.err
    assert [sent.method for sent in gateway.sent] == ["GET"]


def test_delete_of_detections_whose_jobs_still_run_says_they_were_kept(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(
        f"DELETE {HISTORY}", (200, {"deleted": 0, "kept_in_unfinished_jobs": 1, "more": False})
    )
    assert _cli(gateway, "delete", "--class", "person", "--yes") == EXIT_OK
    said = capsys.readouterr().err
    assert "Deleted 0 detections." in said
    assert (
        "Kept 1 detection matching class person: its job is still pending or processing. "
        "Cancel the job or wait for it to finish, then delete again." in said
    )
