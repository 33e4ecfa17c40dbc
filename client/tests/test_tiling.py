"""Tiled detection (ADR 0051) and regions of interest (ADR 0053) as the client and the CLI
send them: `tile_size`, `tile_overlap` and `regions` in a JSON body and a form alike, only when
given, and `--tile-size`, `--tile-overlap` and `--region` refused before anything is sent when
the API would refuse them."""

import json

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


def test_regions_go_as_one_json_parameter_of_fractions() -> None:
    params = DetectionParams(regions=[[(0, 0.5), (1, 0.5), (1, 1), (0, 1)]])

    assert json.loads(str(params.json_fields()["regions"])) == [
        [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
    ]
    assert params.form_fields()["regions"] == params.json_fields()["regions"]
    assert "regions" not in DetectionParams().json_fields()


@pytest.mark.parametrize(
    ("given", "said"),
    [("0,0 1,0", "has 2 corners"), ("0,0 1.5,0 1,1", "outside the image"), ("0 1 2", "X,Y")],
)
def test_a_region_the_api_would_refuse_is_a_usage_error(
    given: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--api-url", "http://127.0.0.1:9", "detect", "x.jpg", "--region", given])
    assert exited.value.code == EXIT_USAGE
    assert said in capsys.readouterr().err
