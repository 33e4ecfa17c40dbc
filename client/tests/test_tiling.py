"""Tiled detection (ADR 0051) as the client and the CLI send it: `tile_size` and
`tile_overlap` in a JSON body and a form alike, only when given, and `--tile-size` /
`--tile-overlap` refused before anything is sent when the API would refuse them."""

import pytest

from objectvision_client.cli import EXIT_USAGE, main
from objectvision_client.operations import DetectionParams


def test_tiles_are_asked_for_only_when_given() -> None:
    params = DetectionParams(tile_size=640, tile_overlap=0.25)

    assert params.json_fields() == {"tile_size": 640, "tile_overlap": 0.25}
    assert params.form_fields() == {"tile_size": "640", "tile_overlap": "0.25"}
    assert DetectionParams(tile_size=960).form_fields() == {"tile_size": "960"}
    assert DetectionParams().json_fields() == {}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--tile-size", "64"], "must be 128 or more"),
        (["--tile-size", "big"], "is not a whole number"),
        (["--tile-size", "640", "--tile-overlap", "0.7"], "above 0 and at most 0.5"),
        (["--tile-size", "640", "--tile-overlap", "0"], "above 0 and at most 0.5"),
    ],
)
def test_tiling_the_api_would_refuse_is_a_usage_error(
    given: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--api-url", "http://127.0.0.1:9", "detect", "x.jpg", *given])
    assert exited.value.code == EXIT_USAGE
    assert said in capsys.readouterr().err
