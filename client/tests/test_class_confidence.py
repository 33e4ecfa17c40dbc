"""Per-class minimum scores (ADR 0050) as the client and the CLI send them: one
`class_confidence` parameter of `class:score` pairs, in a JSON body and in a form alike, and
`--class-confidence CLASS=X` refused before anything is sent when it is not that."""

import pytest

from objectvision_client.cli import EXIT_USAGE, main
from objectvision_client.operations import DetectionParams


def test_class_confidences_go_as_one_parameter_of_class_score_pairs() -> None:
    params = DetectionParams(confidence=0.25, class_confidence={"person": 0.6, " 2 ": 0.15})

    assert params.json_fields() == {"confidence": 0.25, "class_confidence": "person:0.6,2:0.15"}
    assert params.form_fields()["class_confidence"] == "person:0.6,2:0.15"
    assert "class_confidence" not in DetectionParams(class_confidence={}).json_fields()


@pytest.mark.parametrize(
    ("given", "said"),
    [("person", "is not CLASS=X"), ("person=2", "above 0 and at most 1"), ("=0.5", "CLASS=X")],
)
def test_a_class_confidence_the_api_would_refuse_is_a_usage_error(
    given: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--api-url", "http://127.0.0.1:9", "detect", "x.jpg", "--class-confidence", given])
    assert exited.value.code == EXIT_USAGE
    assert said in capsys.readouterr().err
