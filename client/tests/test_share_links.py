"""Share links (ADR 0048) as the client library and `objectvision share` send them and read
the answers: the owner creates, lists and revokes links with the account's credentials; whoever
holds a link reads what it shows with its token alone, in the X-Share-Token header, never with
the caller's API key or session, and may give the console's URL in place of the token.
Redacted images (ADR 0049): a stored image read with chosen classes pixelated (repeated
`redact` query parameters), a link made with `redact` in its body, and every link's `redact`
read back; `detect --annotate --redact`, `share create --redact` and `share list`'s REDACT.

The answers come from a real HTTP server on a local port that stands where the gateway
would, answers what each test scripts and keeps every request; tests/test_cli.py runs the
commands against the real services, and tests/test_share_links_api.py the routes.
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

from objectvision_client import (
    AsyncClient,
    Client,
    CreatedShareLink,
    ObjectVisionError,
    SharedDetection,
    ShareLink,
    TokenPair,
)
from objectvision_client.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, share_links_table
from objectvision_client.operations import share_token
from objectvision_devstack.scripted_gateway import ScriptedGateway

SHARE_LINKS = "/api/v1/share-links"
SHARED = "/api/v1/shared"
DETECTION_ID = "3f6c1d2e-0000-4000-8000-000000000001"
LINK_ID = "9a8b7c6d-0000-4000-8000-000000000002"
TOKEN = "ovs_" + "Jx0d2Q1a" + "A" * 35
URL = f"https://vision.example.com/#/shared?token={TOKEN}"
LINK = {
    "id": LINK_ID,
    "detection_id": DETECTION_ID,
    "created_at": "2026-12-06T17:40:00Z",
    "expires_at": "2099-12-13T17:40:00Z",
    "revoked_at": None,
    "active": True,
    "views": 0,
    "last_viewed_at": None,
    "token_prefix": TOKEN[:12],
    "redact": [],
}
CREATED = {**LINK, "token": TOKEN, "url": URL}
# A link whose image always shows these classes pixelated (ADR 0049); the API lower-cases them.
REDACTING = {**LINK, "id": "9a8b7c6d-0000-4000-8000-000000000004", "redact": ["person", "car"]}
CREATED_REDACTING = {**REDACTING, "token": TOKEN, "url": URL}
REVOKED = {**LINK, "revoked_at": "2026-12-07T09:00:00Z", "active": False, "views": 1}
EXPIRED = {
    **LINK,
    "id": "9a8b7c6d-0000-4000-8000-000000000003",
    "expires_at": "2026-12-01T00:00:00Z",
    "active": False,
}


def _object(name: str, class_id: int, confidence: float, x1: float) -> dict[str, Any]:
    box = {"x1": x1, "y1": 200.0, "x2": x1 + 100.0, "y2": 900.0}
    return {"class": name, "class_id": class_id, "confidence": confidence, "bbox": box}


SHOWN = {
    "image": {"width": 810, "height": 1080},
    "detections": [
        _object("bus", 5, 0.87, 20.0),
        _object("person", 0, 0.86, 50.0),
        _object("person", 0, 0.85, 220.0),
    ],
    "counts": {"person": 2, "bus": 1},
    "model": "yolov8n",
    "model_version": "1",
    "detected_at": "2026-12-06T17:39:58Z",
    "expires_at": "2099-12-13T17:40:00Z",
}
# Enough of a JPEG for the client, which hands the bytes over unread.
ANNOTATED = b"\xff\xd8\xff\xe0annotated" + b"\x00" * 32
ORIGINAL = b"\xff\xd8\xff\xe0original" + b"\x00" * 32
REDACTED = b"\xff\xd8\xff\xe0redacted" + b"\x00" * 32
DETECTION_IMAGE = f"/api/v1/detect/{DETECTION_ID}/image"


def _refused(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": "req-7"}}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]

    @property
    def credentials(self) -> dict[str, str]:
        """The account's credentials the request carried, if any."""
        return {
            name: value
            for name, value in self.headers.items()
            if name in ("authorization", "x-api-key")
        }


class Gateway(ScriptedGateway[Sent]):
    """What the stand-in gateway answers each `METHOD path` (in turn; the last one again once
    the script runs out), and every request it was sent. A `bytes` answer is sent as a JPEG,
    anything else as JSON."""

    def requests(self) -> list[tuple[str, str, dict[str, list[str]], Any]]:
        return [(sent.method, sent.path, sent.query, sent.body) for sent in self.sent]


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
                {name.lower(): value for name, value in request.headers.items()},
            )
        )
        if isinstance(body, bytes):
            payload, content_type = body, "image/jpeg"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


# The token or the link


@pytest.mark.parametrize(
    "given",
    [
        TOKEN,
        f"  {TOKEN}\n",
        URL,
        f"http://127.0.0.1:8000/#/shared?token={TOKEN}",
        f"https://vision.example.com/#/shared?token={TOKEN}&from=mail",
        f"https://vision.example.com/#/shared?from=mail&token={TOKEN}",
    ],
)
def test_the_token_is_taken_as_given_or_from_the_links_fragment(given: str) -> None:
    assert share_token(given) == TOKEN


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("https://vision.example.com/#/shared?token=", "with no token in it"),
        ("https://vision.example.com/#/shared?from=mail", "with no token in it"),
        ("   ", "no share token given"),
    ],
)
def test_a_link_without_a_token_is_refused_before_anything_is_sent(
    gateway: Gateway, given: str, said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        share_token(given)
    with Client(gateway.url) as client, pytest.raises(ValueError, match=said):
        client.shared_detection(given)
    assert gateway.sent == []


# The owner's calls


def test_a_link_is_created_for_a_detection_with_its_lifetime_and_answers_its_token_once(
    gateway: Gateway,
) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED))
    with Client(gateway.url, api_key="ov_test") as client:
        created = client.create_share_link(DETECTION_ID, expires_in_days=3)
        default = client.create_share_link(DETECTION_ID)
    assert gateway.requests() == [
        ("POST", SHARE_LINKS, {}, {"detection_id": DETECTION_ID, "expires_in_days": 3}),
        # No lifetime given: the server's default, not one the client guesses.
        ("POST", SHARE_LINKS, {}, {"detection_id": DETECTION_ID}),
    ]
    assert [sent.credentials for sent in gateway.sent] == [{"x-api-key": "ov_test"}] * 2
    assert isinstance(created, CreatedShareLink) and created == default
    assert (created.id, created.detection_id, created.active) == (LINK_ID, DETECTION_ID, True)
    assert (created.token, created.url, created.token_prefix) == (TOKEN, URL, TOKEN[:12])
    assert created.expires_at == datetime(2099, 12, 13, 17, 40, tzinfo=UTC)
    assert (created.revoked_at, created.views, created.last_viewed_at) == (None, 0, None)
    # A printed link does not give its secret away.
    assert TOKEN not in repr(created)
    assert created.raw == CREATED


def test_the_list_sends_its_filter_and_paging_and_reads_links_without_tokens(
    gateway: Gateway,
) -> None:
    listed = {"items": [REVOKED, EXPIRED], "total": 7, "limit": 2, "offset": 4}
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    with Client(gateway.url, api_key="ov_test") as client:
        page = client.list_share_links(detection_id=DETECTION_ID, limit=2, offset=4)
        client.list_share_links()
    query = {"detection_id": [DETECTION_ID], "limit": ["2"], "offset": ["4"]}
    assert gateway.requests() == [
        ("GET", SHARE_LINKS, query, None),
        ("GET", SHARE_LINKS, {"limit": ["20"], "offset": ["0"]}, None),
    ]
    assert (page.total, page.limit, page.offset) == (7, 2, 4)
    revoked, expired = page.items
    assert type(revoked) is ShareLink and not hasattr(revoked, "token")
    assert revoked.revoked_at == datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert (revoked.active, revoked.views) == (False, 1)
    assert (expired.revoked_at, expired.active) == (None, False)
    assert revoked.raw == REVOKED


def test_a_revocation_deletes_the_link_and_answers_it_revoked(gateway: Gateway) -> None:
    gateway.answers(f"DELETE {SHARE_LINKS}/{LINK_ID}", (200, REVOKED))

    async def revoke() -> ShareLink:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.revoke_share_link(LINK_ID)

    with Client(gateway.url, api_key="ov_test") as client:
        revoked = client.revoke_share_link(LINK_ID)
    assert asyncio.run(revoke()) == revoked
    assert gateway.requests() == [("DELETE", f"{SHARE_LINKS}/{LINK_ID}", {}, None)] * 2
    assert (revoked.active, revoked.revoked_at) == (False, datetime(2026, 12, 7, 9, tzinfo=UTC))


def test_too_many_links_and_another_accounts_detection_are_the_apis_errors(
    gateway: Gateway,
) -> None:
    gateway.answers(
        f"POST {SHARE_LINKS}",
        (409, _refused("too_many_share_links", "this detection has 10 active share links")),
        (404, _refused("not_found", "detection not found")),
    )
    with Client(gateway.url, api_key="ov_test") as client:
        with pytest.raises(ObjectVisionError) as too_many:
            client.create_share_link(DETECTION_ID)
        with pytest.raises(ObjectVisionError) as theirs:
            client.create_share_link(DETECTION_ID)
    assert (too_many.value.status, too_many.value.code) == (409, "too_many_share_links")
    assert (theirs.value.status, theirs.value.code) == (404, "not_found")


# Redacted images (ADR 0049)


def test_a_stored_image_is_read_with_the_chosen_classes_pixelated(gateway: Gateway) -> None:
    """`redact` goes as one `redact` query parameter per class (blanks and repeats dropped),
    beside `annotated`; with nothing to redact no `redact` parameter is sent at all."""
    gateway.answers(f"GET {DETECTION_IMAGE}", (200, REDACTED))

    async def without_boxes() -> bytes:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.detection_image(DETECTION_ID, annotated=False, redact=("person",))

    with Client(gateway.url, api_key="ov_test") as client:
        drawn = client.detection_image(DETECTION_ID, redact=["person", " car ", "", "person", "2"])
        client.detection_image(DETECTION_ID)
    assert (drawn, asyncio.run(without_boxes())) == (REDACTED, REDACTED)
    assert [(sent.method, sent.path, sent.query) for sent in gateway.sent] == [
        ("GET", DETECTION_IMAGE, {"annotated": ["true"], "redact": ["person", "car", "2"]}),
        ("GET", DETECTION_IMAGE, {"annotated": ["true"]}),
        ("GET", DETECTION_IMAGE, {"annotated": ["false"], "redact": ["person"]}),
    ]
    assert all(sent.credentials == {"x-api-key": "ov_test"} for sent in gateway.sent)


def test_an_unknown_class_to_redact_is_the_apis_422(gateway: Gateway) -> None:
    refused = _refused("invalid_argument", "unknown class 'unicorn'; the model knows: person, car")
    gateway.answers(f"GET {DETECTION_IMAGE}", (422, refused))
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as err:
        client.detection_image(DETECTION_ID, redact=["unicorn"])
    assert (err.value.status, err.value.code) == (422, "invalid_argument")
    assert "the model knows: person" in str(err.value)


def test_a_bare_class_name_is_refused_before_anything_is_sent(gateway: Gateway) -> None:
    """A string is a sequence of its letters: `redact="person"` would ask for p, e, r..."""
    with Client(gateway.url, api_key="ov_test") as client:
        with pytest.raises(TypeError, match=r"\['person'\]"):
            client.detection_image(DETECTION_ID, redact="person")
        with pytest.raises(TypeError, match=r"\['person'\]"):
            client.create_share_link(DETECTION_ID, redact="person")
    assert gateway.sent == []


def test_a_link_made_with_redact_sends_its_classes_and_every_link_reads_them_back(
    gateway: Gateway,
) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED_REDACTING), (201, CREATED))
    without_field = {key: value for key, value in LINK.items() if key != "redact"}
    listed = {"items": [REDACTING, LINK, without_field], "total": 3, "limit": 20, "offset": 0}
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    with Client(gateway.url, api_key="ov_test") as client:
        redacting = client.create_share_link(
            DETECTION_ID, expires_in_days=2, redact=["person", "Car"]
        )
        plain = client.create_share_link(DETECTION_ID, redact=[])
        page = client.list_share_links()
    body = {"detection_id": DETECTION_ID, "expires_in_days": 2, "redact": ["person", "Car"]}
    assert gateway.requests()[:2] == [
        ("POST", SHARE_LINKS, {}, body),
        # Nothing to redact: no `redact` in the body, not an empty list.
        ("POST", SHARE_LINKS, {}, {"detection_id": DETECTION_ID}),
    ]
    assert isinstance(redacting, CreatedShareLink)
    assert (redacting.redact, plain.redact) == (("person", "car"), ())
    # A server from before ADR 0049 says nothing: its links redact nothing.
    assert [link.redact for link in page.items] == [("person", "car"), (), ()]


# A recipient's calls


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"api_key": "ov_owner"},
        {"tokens": TokenPair(access_token="owner-access", refresh_token="owner-refresh")},
    ],
    ids=["no credentials", "an API key", "a session"],
)
def test_a_shared_detection_is_read_with_the_token_alone(
    gateway: Gateway, credentials: dict[str, Any]
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN))
    with Client(gateway.url, **credentials) as client:
        shared = client.shared_detection(URL)
    (sent,) = gateway.sent
    assert (sent.method, sent.path, sent.query, sent.body) == ("GET", SHARED, {}, None)
    assert sent.headers["x-share-token"] == TOKEN
    # Never the caller's own credentials: the link is the recipient's, not the caller's account.
    assert sent.credentials == {}
    assert TOKEN not in sent.path and not sent.query
    assert isinstance(shared, SharedDetection)
    assert (shared.width, shared.height) == (810, 1080)
    assert [obj.class_name for obj in shared.objects] == ["bus", "person", "person"]
    assert shared.objects[0].bbox.x1 == 20.0 and shared.objects[0].confidence == 0.87
    assert shared.class_counts() == {"person": 2, "bus": 1}
    assert list(shared.class_counts()) == ["person", "bus"]
    assert (shared.model, shared.model_version) == ("yolov8n", "1")
    assert shared.detected_at == datetime(2026, 12, 6, 17, 39, 58, tzinfo=UTC)
    assert shared.raw == SHOWN


def test_a_shared_image_is_read_annotated_or_as_uploaded(gateway: Gateway) -> None:
    gateway.answers(f"GET {SHARED}/image", (200, ANNOTATED), (200, ORIGINAL))

    async def original() -> bytes:
        async with AsyncClient(gateway.url, api_key="ov_owner") as client:
            return await client.shared_image(TOKEN, annotated=False)

    with Client(gateway.url) as client:
        drawn = client.shared_image(TOKEN)
    assert (drawn, asyncio.run(original())) == (ANNOTATED, ORIGINAL)
    assert [sent.query for sent in gateway.sent] == [
        {"annotated": ["true"]},
        {"annotated": ["false"]},
    ]
    assert [sent.headers["x-share-token"] for sent in gateway.sent] == [TOKEN, TOKEN]
    assert [sent.credentials for sent in gateway.sent] == [{}, {}]


@pytest.mark.parametrize(
    "code", ["share_link_not_found", "share_link_expired", "share_link_revoked"]
)
def test_a_link_that_shows_nothing_raises_its_404_code_without_a_refresh(
    gateway: Gateway, code: str
) -> None:
    """A session's client refreshes on a 401 only for its own calls; a shared read is no
    such call, so a refused link is one request and its error."""
    gateway.answers(f"GET {SHARED}", (404, _refused(code, "this share link shows nothing")))
    tokens = TokenPair(access_token="owner-access", refresh_token="owner-refresh")
    with Client(gateway.url, tokens=tokens) as client, pytest.raises(ObjectVisionError) as err:
        client.shared_detection(TOKEN)
    assert (err.value.status, err.value.code, err.value.request_id) == (404, code, "req-7")
    assert [(sent.method, sent.path) for sent in gateway.sent] == [("GET", SHARED)]


def test_the_async_client_reads_a_shared_detection_without_credentials(gateway: Gateway) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN))

    async def read() -> SharedDetection:
        async with AsyncClient(gateway.url) as client:
            return await client.shared_detection(TOKEN)

    assert asyncio.run(read()).class_counts() == {"person": 2, "bus": 1}
    (sent,) = gateway.sent
    assert sent.headers["x-share-token"] == TOKEN and sent.credentials == {}


# The command line


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No saved session and no API key: what a recipient without an account has."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("OBJECTVISION_API_KEY", raising=False)


@pytest.fixture
def api_key(no_login: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")


def _command(gateway: Gateway, *args: str) -> int:
    try:
        return main(["--api-url", gateway.url, *args])
    except SystemExit as exited:  # argparse's own refusals
        return int(str(exited.code))


def _cli(gateway: Gateway, *args: str) -> int:
    return _command(gateway, "share", *args)


def test_the_links_table_says_which_work_and_what_each_pixelates() -> None:
    links = [ShareLink.from_json(link) for link in (LINK, REVOKED, EXPIRED, REDACTING)]
    suspended = ShareLink.from_json({**LINK, "id": "s-1", "active": False})
    header, *rows = share_links_table([*links, suspended]).splitlines()
    assert header.split() == ["ID", "DETECTION", "STATE", "VIEWS", "EXPIRES", "REDACT", "PREFIX"]
    states = [row.split()[2] for row in rows]
    assert states == ["active", "revoked", "expired", "active", "unavailable"]
    assert all(row.split()[1] == DETECTION_ID for row in rows)
    assert [row.split()[3] for row in rows] == ["0", "1", "0", "0", "0"]
    # EXPIRES is a date and a time: REDACT is the second to last column.
    assert [row.split()[-2] for row in rows] == ["-", "-", "-", "person,car", "-"]
    assert all(row.endswith(f"{TOKEN[:12]}...") for row in rows)


def test_create_prints_the_url_and_the_token_and_says_it_is_shown_once(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED))
    assert _cli(gateway, "create", DETECTION_ID, "--days", "3") == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == f"URL: {URL}\nToken: {TOKEN}\n"
    assert f"Share link {LINK_ID} created for detection {DETECTION_ID}" in printed.err
    assert "The token is shown only this once" in printed.err
    assert f"`objectvision share revoke {LINK_ID}`" in printed.err
    assert gateway.requests() == [
        ("POST", SHARE_LINKS, {}, {"detection_id": DETECTION_ID, "expires_in_days": 3})
    ]


def test_create_with_redact_sends_the_classes_and_says_what_the_image_hides(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED_REDACTING))
    assert _cli(gateway, "create", DETECTION_ID, "--redact", "person", "--redact", "car") == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == f"URL: {URL}\nToken: {TOKEN}\n"
    assert "image (person, car pixelated, boxed or not; only the objects the model found" in (
        printed.err
    )
    assert gateway.requests() == [
        ("POST", SHARE_LINKS, {}, {"detection_id": DETECTION_ID, "redact": ["person", "car"]})
    ]


def test_list_shows_what_each_link_pixelates(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {"items": [REDACTING, LINK], "total": 2, "limit": 20, "offset": 0}
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    assert _cli(gateway, "list") == EXIT_OK
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[5] == "REDACT"
    assert [row.split()[-2] for row in rows] == ["person,car", "-"]


DETECTED = {
    "detection_id": DETECTION_ID,
    "filename": "street.jpg",
    "image": {"width": 810, "height": 1080},
    "detections": SHOWN["detections"],
    "timings": {"total_ms": 12.5},
    "model": "yolov8n",
    "model_version": "1",
    "cached": False,
}


def test_detect_annotate_with_redact_saves_the_images_with_those_classes_pixelated(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gateway.answers("POST /api/v1/detect/image", (200, DETECTED))
    gateway.answers(f"GET {DETECTION_IMAGE}", (200, REDACTED))
    outdir = tmp_path / "out"
    image_url = "https://example.com/street.jpg"
    redacting = ("--redact", "person", "--redact", "car")
    assert _command(gateway, "detect", image_url, "--annotate", str(outdir), *redacting) == EXIT_OK
    saved = outdir / "street.annotated.jpg"
    assert saved.read_bytes() == REDACTED
    assert f"Wrote {saved} (person, car pixelated)" in capsys.readouterr().err
    posted, read = gateway.sent
    assert (posted.method, posted.body["url"]) == ("POST", image_url)
    assert (read.method, read.path) == ("GET", DETECTION_IMAGE)
    assert read.query == {"annotated": ["true"], "redact": ["person", "car"]}


def test_detect_with_redact_but_no_annotate_is_a_usage_error(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _command(gateway, "detect", "https://example.com/a.jpg", "--redact", "person") == (
        EXIT_USAGE
    )
    assert "--redact says what --annotate's images pixelate" in capsys.readouterr().err
    assert gateway.sent == []


@pytest.mark.parametrize(("days", "said"), [("31", "more than 30 days"), ("0", "1 or more")])
def test_create_refuses_a_lifetime_the_api_would(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    days: str,
    said: str,
) -> None:
    assert _cli(gateway, "create", DETECTION_ID, "--days", days) == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert gateway.sent == []


def test_list_shows_a_page_of_links_and_json_the_apis_answer(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {"items": [LINK, REVOKED], "total": 2, "limit": 20, "offset": 0}
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    assert _cli(gateway, "list", "--detection", DETECTION_ID) == EXIT_OK
    table = capsys.readouterr()
    assert [line.split()[2] for line in table.out.splitlines()[1:]] == ["active", "revoked"]
    assert "Showing 1-2 of 2." in table.err
    assert _cli(gateway, "list", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == listed
    assert [sent.query.get("detection_id") for sent in gateway.sent] == [[DETECTION_ID], None]


def test_revoke_says_the_link_no_longer_works(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"DELETE {SHARE_LINKS}/{LINK_ID}", (200, REVOKED))
    assert _cli(gateway, "revoke", LINK_ID) == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == f"{LINK_ID}\n"
    assert (
        f"Share link {LINK_ID} is revoked: it no longer shows detection {DETECTION_ID} "
        "(viewed 1 time)." in printed.err
    )


def test_show_reads_a_link_with_no_login_and_writes_its_image(
    gateway: Gateway, no_login: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN))
    gateway.answers(f"GET {SHARED}/image", (200, ORIGINAL))
    image = tmp_path / "shared.jpg"
    assert _cli(gateway, "show", URL, "--image", str(image), "--original") == EXIT_OK
    printed = capsys.readouterr()
    header, *rows = printed.out.splitlines()
    assert header.split() == ["CLASS", "CONFIDENCE", "X1", "Y1", "X2", "Y2"]
    assert [row.split()[:2] for row in rows] == [
        ["bus", "0.87"],
        ["person", "0.86"],
        ["person", "0.85"],
    ]
    assert "Shared detection: 810x1080 image, 3 objects (person x2, bus), found by yolov8n 1" in (
        printed.err
    )
    # Not "as uploaded": a link made with `redact` pixelates the image without boxes too.
    assert f"Wrote the image without boxes to {image}" in printed.err
    assert image.read_bytes() == ORIGINAL
    assert [(sent.path, sent.query) for sent in gateway.sent] == [
        (SHARED, {}),
        (f"{SHARED}/image", {"annotated": ["false"]}),
    ]
    assert all(sent.headers["x-share-token"] == TOKEN for sent in gateway.sent)
    assert all(sent.credentials == {} for sent in gateway.sent)


def test_show_sends_no_api_key_even_when_one_is_set(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN))
    assert _cli(gateway, "show", TOKEN, "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == SHOWN
    (sent,) = gateway.sent
    assert sent.credentials == {} and sent.headers["x-share-token"] == TOKEN


def test_show_of_a_revoked_link_fails_with_the_reason(
    gateway: Gateway, no_login: None, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = _refused("share_link_revoked", "this share link was revoked by its owner")
    gateway.answers(f"GET {SHARED}", (404, revoked))
    assert _cli(gateway, "show", URL) == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err == (
        "error: this share link was revoked by its owner "
        "(HTTP 404 share_link_revoked, request id req-7)\n"
    )


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ([TOKEN, "--original"], "--original says which image --image writes"),
        (["https://vision.example.com/#/shared?from=mail"], "with no token in it"),
    ],
)
def test_show_without_a_token_or_with_original_alone_is_a_usage_error(
    gateway: Gateway,
    no_login: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
) -> None:
    assert _cli(gateway, "show", *options) == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert gateway.sent == []


def test_history_image_saves_a_stored_image_with_boxes_as_uploaded_or_redacted(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gateway.answers(f"GET {DETECTION_IMAGE}", (200, REDACTED))
    target = tmp_path / "street.jpg"

    redacting = ("--original", "--redact", "person", "--redact", "car")
    assert _command(gateway, "history", "image", DETECTION_ID, "-o", str(target), *redacting) == (
        EXIT_OK
    )
    assert target.read_bytes() == REDACTED
    assert "the upload without boxes" in capsys.readouterr().err
    assert _command(gateway, "history", "image", DETECTION_ID, "-o", str(target)) == EXIT_OK
    first, second = gateway.sent
    assert first.query == {"annotated": ["false"], "redact": ["person", "car"]}
    assert second.query == {"annotated": ["true"]}
    assert _command(gateway, "history", "image", DETECTION_ID, "-o", str(tmp_path)) != EXIT_OK
    assert len(gateway.sent) == 2
