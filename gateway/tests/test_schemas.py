"""Request bodies accept exactly what the OpenAPI document says, nothing coerced."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gateway.schemas.api_keys import ApiKeyCreateIn
from gateway.schemas.auth import LoginForm, SignUpIn
from gateway.schemas.detect import DetectedObjectOut, VideoInfoOut, class_confidences
from gateway.schemas.users import SettingsUpdateIn, UserUpdateIn
from gateway.schemas.video import VideoFrameOut
from objectvision.v1 import detection_pb2

# Embeddings, overrides and isolates: U+202A..U+202E, U+2066..U+2069.
BIDI_CONTROL_CODES = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
GOOD_SIGNUP = {"email": "ada@example.com", "password": "correct horse", "name": "Ada"}


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not-an-email"},
        {"email": "ada@example.test"},
        {"email": f"{'a' * 320}@example.com"},
        {"email": f"{'a' * 65}@example.com"},
        {"email": "\u00fcser@example.com"},
        {"password": "short"},
        {"password": "p" * 129},
        {"password": "lone \ud800 surrogate"},
        {"name": "lone \udc00 surrogate"},
        {"name": ""},
        {"name": "   "},
        {"name": "tab\tname"},
        *({"name": f"Eve{chr(code)}moc.elgoog"} for code in BIDI_CONTROL_CODES),
        {"name": "n" * 101},
        {"name": 5},
        {"is_admin": True},
    ],
)
def test_signup_refuses(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SignUpIn.model_validate({**GOOD_SIGNUP, **changes})


@pytest.mark.parametrize("email", ["Ada@Example.COM", " ada@\uff45xample.com "])
def test_signup_takes_the_email_as_its_account_key(email: str) -> None:
    """The key the auth service stores and the login limits count under."""
    body = SignUpIn.model_validate({**GOOD_SIGNUP, "email": email})
    assert body.email == "ada@example.com"


def test_the_login_form_ignores_oauth2_extras_but_checks_the_grant() -> None:
    form = LoginForm.model_validate(
        {"username": "a@example.com", "password": "pw", "scope": "x", "client_id": "y"}
    )
    assert (form.username, form.grant_type) == ("a@example.com", "password")
    with pytest.raises(ValidationError):
        LoginForm.model_validate({"username": "a", "password": "p", "grant_type": "client"})


def test_a_user_update_sends_only_what_was_given() -> None:
    request = UserUpdateIn.model_validate({"name": "Bo"}).to_proto("user-1")
    assert request.user_id == "user-1"
    assert request.name == "Bo"
    assert not request.HasField("email")
    assert not request.HasField("password")


@pytest.mark.parametrize("field", ["email", "password"])
def test_credential_changes_need_the_current_password(field: str) -> None:
    value = {"email": "new@example.com", "password": "a new password"}[field]
    with pytest.raises(ValidationError, match="current_password"):
        UserUpdateIn.model_validate({field: value})
    changed = UserUpdateIn.model_validate({field: value, "current_password": "old one"})
    assert changed.to_proto("u").HasField("current_password")


def test_the_schema_says_so_too() -> None:
    schema = UserUpdateIn.model_json_schema()
    assert schema["dependentRequired"] == {
        "email": ["current_password"],
        "password": ["current_password"],
    }
    assert schema["additionalProperties"] is False
    assert all("anyOf" not in field for field in schema["properties"].values())


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (UserUpdateIn, {"name": None}),
        (SettingsUpdateIn, {"theme": None}),
        (SettingsUpdateIn, {"theme": "neon"}),
        (SettingsUpdateIn, {"notifications_enabled": 0}),
        (SettingsUpdateIn, {"notifications_enabled": "true"}),
        (ApiKeyCreateIn, {"name": "nul\x00"}),
        (ApiKeyCreateIn, {"name": "line\u2028separator"}),
        (UserUpdateIn, {"name": "paragraph\u2029separator"}),
        (ApiKeyCreateIn, {"name": " "}),
        (ApiKeyCreateIn, {"name": "ok", "scopes": []}),
        (ApiKeyCreateIn, {"name": "ok", "scopes": ["admin"]}),
        (ApiKeyCreateIn, {"name": "ok", "scopes": "detect"}),
        (ApiKeyCreateIn, {"name": "ok", "expires_in_days": 0}),
        (ApiKeyCreateIn, {"name": "ok", "expires_in_days": 366}),
        (ApiKeyCreateIn, {"name": "ok", "expires_in_days": "30"}),
    ],
)
def test_patches_and_keys_refuse_nulls_coercions_and_junk(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_an_api_key_request_sends_its_scopes_and_only_a_given_lifetime() -> None:
    scoped = ApiKeyCreateIn.model_validate(
        {"name": "edge", "scopes": ["results:read", "detect"], "expires_in_days": 30}
    ).to_proto()
    assert (list(scoped.scopes), scoped.expires_in_days) == (["results:read", "detect"], 30)
    plain = ApiKeyCreateIn.model_validate({"name": "ci"}).to_proto()
    assert list(plain.scopes) == [] and not plain.HasField("expires_in_days")


def test_a_settings_update_sends_only_what_was_given() -> None:
    request = SettingsUpdateIn.model_validate({"notifications_enabled": False}).to_proto("u")
    assert request.HasField("notifications_enabled")
    assert request.notifications_enabled is False
    assert not request.HasField("theme")


def test_an_object_has_a_track_id_only_when_its_track_is_confirmed() -> None:
    """0 is an id like any other; an unset id is null, not 0."""
    found = {
        "class_name": "bus",
        "class_id": 5,
        "confidence": 0.9,
        "box": detection_pb2.BoundingBox(x1=1, y1=2, x2=30, y2=40),
    }
    tracked = DetectedObjectOut.from_proto(detection_pb2.DetectedObject(**found, track_id=0))
    untracked = DetectedObjectOut.from_proto(detection_pb2.DetectedObject(**found))
    assert tracked.model_dump(mode="json")["track_id"] == 0
    assert untracked.model_dump(mode="json")["track_id"] is None
    assert untracked.model_dump(mode="json")["class"] == "bus"


@pytest.mark.parametrize("tracked", [True, False])
def test_a_video_says_whether_it_is_tracked(tracked: bool) -> None:
    video = detection_pb2.VideoInfo(
        filename="street.mp4", container="mp4", codec="h264", tracked=tracked
    )
    assert VideoInfoOut.from_proto("job-1", video).tracked is tracked


def test_a_video_with_counting_lines_gives_them_back_with_their_counts() -> None:
    """The lines in the shape they were sent in, float32 noise rounded away; the counts by
    line and class as the service sends them."""
    video = detection_pb2.VideoInfo(
        filename="street.mp4",
        container="mp4",
        codec="h264",
        tracked=True,
        lines=[
            detection_pb2.CountingLine(
                name="gate",
                start=detection_pb2.Point(x=0, y=360.1),
                end=detection_pb2.Point(x=1280, y=360.1),
            )
        ],
        line_counts=[
            detection_pb2.LineCount(
                line="gate", class_id=0, class_name="person", crossed_in=3, crossed_out=1
            )
        ],
    )

    shown = VideoInfoOut.from_proto("job-1", video).model_dump(mode="json")

    assert shown["lines"] == [{"name": "gate", "start": [0.0, 360.1], "end": [1280.0, 360.1]}]
    assert shown["line_counts"] == [
        {"line": "gate", "class_id": 0, "class_name": "person", "crossed_in": 3, "crossed_out": 1}
    ]


def test_a_video_without_counting_lines_has_empty_lists() -> None:
    shown = VideoInfoOut.from_proto(
        "job-1", detection_pb2.VideoInfo(filename="a.mp4", container="mp4", codec="h264")
    ).model_dump(mode="json")
    assert (shown["lines"], shown["line_counts"]) == ([], [])


def test_a_frames_crossings_say_which_way_each_object_went() -> None:
    frame = detection_pb2.VideoFrame(
        frame_index=4,
        timestamp_seconds=0.4,
        crossings=[
            detection_pb2.LineCrossing(
                line="gate",
                track_id=0,
                class_id=5,
                class_name="bus",
                direction=detection_pb2.CROSSING_DIRECTION_IN,
            ),
            detection_pb2.LineCrossing(
                line="exit",
                track_id=2,
                class_id=0,
                class_name="person",
                direction=detection_pb2.CROSSING_DIRECTION_OUT,
            ),
        ],
    )

    shown = VideoFrameOut.from_proto(frame).model_dump(mode="json")

    assert shown["crossings"] == [
        {"line": "gate", "track_id": 0, "class_id": 5, "class_name": "bus", "direction": "in"},
        {"line": "exit", "track_id": 2, "class_id": 0, "class_name": "person", "direction": "out"},
    ]


def test_a_crossing_in_no_known_direction_is_a_service_bug_not_something_to_show() -> None:
    frame = detection_pb2.VideoFrame(
        crossings=[detection_pb2.LineCrossing(line="gate", track_id=0, class_name="bus")]
    )
    with pytest.raises(ValueError, match="unknown crossing direction 0"):
        VideoFrameOut.from_proto(frame)


def test_a_video_with_counting_zones_gives_them_back_with_their_counts() -> None:
    """The zones in the shape they were sent in, float32 noise rounded away; who was in
    them by zone and class as the service sends it, the mean stay to the millisecond."""
    corners = [(0, 0), (640, 0), (640, 200.1), (0, 200.1)]
    video = detection_pb2.VideoInfo(
        filename="street.mp4",
        container="mp4",
        codec="h264",
        tracked=True,
        zones=[
            detection_pb2.CountingZone(
                name="queue", polygon=[detection_pb2.Point(x=x, y=y) for x, y in corners]
            )
        ],
        zone_counts=[
            detection_pb2.ZoneCount(
                zone="queue",
                class_id=0,
                class_name="person",
                visited=3,
                peak=2,
                mean_stay_seconds=1.23456,
            )
        ],
    )

    shown = VideoInfoOut.from_proto("job-1", video).model_dump(mode="json")

    assert shown["zones"] == [
        {"name": "queue", "polygon": [[0.0, 0.0], [640.0, 0.0], [640.0, 200.1], [0.0, 200.1]]}
    ]
    assert shown["zone_counts"] == [
        {
            "zone": "queue",
            "class_id": 0,
            "class_name": "person",
            "visited": 3,
            "peak": 2,
            "mean_stay_seconds": 1.235,
        }
    ]


def test_a_video_without_counting_zones_has_empty_lists() -> None:
    shown = VideoInfoOut.from_proto(
        "job-1", detection_pb2.VideoInfo(filename="a.mp4", container="mp4", codec="h264")
    ).model_dump(mode="json")
    assert (shown["zones"], shown["zone_counts"]) == ([], [])


def test_each_object_of_a_video_frame_names_the_zones_it_stands_in() -> None:
    """In the order the zones were given; none is an empty list. An image's objects, which
    never stand in a zone, do not carry the field at all."""
    box = detection_pb2.BoundingBox(x1=1, y1=2, x2=30, y2=40)
    frame = detection_pb2.VideoFrame(
        frame_index=4,
        timestamp_seconds=0.4,
        objects=[
            detection_pb2.DetectedObject(
                class_name="person", box=box, track_id=2, zones=["queue", "door"]
            ),
            detection_pb2.DetectedObject(class_name="bus", class_id=5, box=box, track_id=0),
        ],
    )

    in_zones, outside = VideoFrameOut.from_proto(frame).model_dump(mode="json")["detections"]

    assert (in_zones["class"], in_zones["track_id"], in_zones["zones"]) == (
        "person",
        2,
        ["queue", "door"],
    )
    assert (outside["class"], outside["zones"]) == ("bus", [])
    image_object = DetectedObjectOut.from_proto(frame.objects[0]).model_dump(mode="json")
    assert "zones" not in image_object


def test_class_confidences_read_class_score_pairs_and_say_what_is_wrong() -> None:
    assert class_confidences("person:0.6, 2:0.15,") == {"person": 0.6, "2": 0.15}
    assert class_confidences("") == {}
    for text, said in (
        ("person", "is not class:score"),
        (":0.5", "is not class:score"),
        ("person:high", "above 0 and at most 1"),
        ("person:0", "above 0 and at most 1"),
        ("person:1.5", "above 0 and at most 1"),
        ("person:nan", "above 0 and at most 1"),
        ("person:0.5,Person:0.6", "given twice"),
    ):
        with pytest.raises(ValueError, match=said):
            class_confidences(text)
