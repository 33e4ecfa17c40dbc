"""The history's "unsure" filter (`confidence_below`): the client library sends it as the
query parameter the API takes, beside the other filters, for listing, counting, exporting and
deleting; `objectvision history`, `history delete` and `export` take it as --unsure-below,
checked before anything is sent. The answers come from a real HTTP server on a local port that
stands where the gateway would; tests/test_detect_api.py and detection-service's history
tests check what the filter keeps.
"""

import io

import pytest

from objectvision_client import Client
from objectvision_client.cli import EXIT_OK, EXIT_USAGE, main
from objectvision_devstack.scripted_gateway import ScriptedGateway

HISTORY = "/api/v1/detect/history"
PAGE = {"items": [], "total": 0, "limit": 20, "offset": 0}
SUMMARY = {"detections": 0, "objects": 0, "class_counts": {}}


def test_the_library_sends_the_unsure_filter_with_the_others(json_gateway: ScriptedGateway) -> None:
    json_gateway.answers(f"GET {HISTORY}", (200, PAGE))
    json_gateway.answers(f"GET {HISTORY}/summary", (200, SUMMARY))
    with Client(json_gateway.url, api_key="ov_test") as client:
        client.history(confidence_below=0.5, class_name="person")
        client.history_summary(confidence_below=0.35)
        client.history()
    listed, counted, plain = json_gateway.sent
    assert listed.query == {
        "limit": ["20"],
        "offset": ["0"],
        "class_name": ["person"],
        "confidence_below": ["0.5"],
    }
    assert counted.query == {"confidence_below": ["0.35"]}
    assert "confidence_below" not in plain.query
    with pytest.raises(ValueError, match="confidence_below"):
        Client(json_gateway.url, api_key="ov_test").export(
            io.BytesIO(), job_id="j1", confidence_below=0.5
        )


def test_the_command_takes_unsure_below_and_checks_it_first(
    json_gateway: ScriptedGateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    json_gateway.answers(f"GET {HISTORY}", (200, PAGE))
    args = ["--api-url", json_gateway.url, "history", "--unsure-below", "0.4", "--class", "person"]
    assert main(args) == EXIT_OK
    (sent,) = json_gateway.sent
    assert (sent.query["confidence_below"], sent.query["class_name"]) == (["0.4"], ["person"])

    for unfit in ("0", "1.5", "x"):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:
            main(["--api-url", json_gateway.url, "history", "--unsure-below", unfit])
        assert stopped.value.code == EXIT_USAGE
        assert "--unsure-below" in capsys.readouterr().err
    code = main(["--api-url", json_gateway.url, "export", "--job", "j1", "--unsure-below", "0.4"])
    assert code == EXIT_USAGE
    assert "--unsure-below" in capsys.readouterr().err
    assert len(json_gateway.sent) == 1, "nothing sent for a refused command"
