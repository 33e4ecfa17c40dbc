"""`objectvision share` (ADR 0048) end to end: the real console script, run as a subprocess,
against the running stack (tests/conftest.py's `stack`), nothing mocked.

An owner shares a stored detection; a recipient with no account and no saved session reads
it from the link alone; the owner sees the view and revokes the link, after which the
recipient's read fails with the reason. client/tests/test_share_links.py checks the requests
and their parsing against a stand-in gateway, tests/test_share_links_api.py the routes.
"""

import os
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from objectvision_client import Client
from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared")) / "images"
BUS = IMAGES / "bus.jpg"
PASSWORD = "correct horse battery"


def _logged_in(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> CommandLine:
    """A new account, logged in through `objectvision login` in a config folder of its own
    (signed up through the library from a network of its own, as tests/test_cli.py does)."""
    email = f"cli-share-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(email, PASSWORD, "CLI Sharer")
    owner = CommandLine(stack.gateway_url, tmp_path_factory.mktemp("xdg-owner"))
    owner.run("login", "--email", email, "--password", PASSWORD)
    return owner


def _printed(label: str, stdout: str) -> str:
    """The value of the `LABEL: value` line `share create` printed."""
    (value,) = [
        line.removeprefix(f"{label}: ")
        for line in stdout.splitlines()
        if line.startswith(f"{label}: ")
    ]
    return value


# In the slow tier: a detection, two logins' worth of subprocesses and a handful of calls
# (about 10 s on a CPU stack); the default tier keeps the client's share tests, which need no
# stack.
@pytest.mark.slow
def test_a_detection_is_shared_read_without_an_account_listed_with_its_view_and_revoked(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    owner = _logged_in(stack, tmp_path_factory)
    (detected,) = owner.json("detect", str(BUS))
    detection_id = detected["detection_id"]
    assert detection_id

    created = owner.run("share", "create", detection_id, "--days", "2")
    url, token = _printed("URL", created.stdout), _printed("Token", created.stdout)
    assert url == f"{stack.gateway_url}/#/shared?token={token}"
    assert token.startswith("ovs_")
    assert "The token is shown only this once" in created.stderr
    link_id = created.stderr.split("Share link ", 1)[1].split()[0]

    # The recipient: a config folder with no saved session, and no API key.
    recipient = CommandLine(stack.gateway_url, tmp_path_factory.mktemp("xdg-recipient"))
    image = tmp_path / "shared.jpg"
    shown = recipient.run("share", "show", url, "--image", str(image))
    header, *rows = shown.stdout.splitlines()
    assert header.split() == ["CLASS", "CONFIDENCE", "X1", "Y1", "X2", "Y2"]
    assert sorted(row.split()[0] for row in rows) == ["bus"] + ["person"] * 4
    assert "810x1080 image, 5 objects (person x4, bus)" in shown.stderr
    assert not recipient.credentials.exists()
    picture = cv2.imdecode(np.frombuffer(image.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[:2] == (1080, 810)

    # One view: the read of the detection counts, the image's does not.
    table_header, row = owner.run("share", "list", "--detection", detection_id).stdout.splitlines()
    assert table_header.split() == [
        "ID",
        "DETECTION",
        "STATE",
        "VIEWS",
        "EXPIRES",
        "REDACT",
        "PREFIX",
    ]
    assert row.split()[:4] == [link_id, detection_id, "active", "1"]
    assert row.split()[-2] == "-"  # made without --redact: nothing pixelated
    assert row.endswith(f"{token[:12]}...") and token not in row
    (link,) = owner.json("share", "list", "--detection", detection_id)["items"]
    assert (link["id"], link["active"], link["views"]) == (link_id, True, 1)

    # The bare token works as well as the link, and shows what the owner's detection found.
    as_json = recipient.json("share", "show", token)
    assert as_json["counts"] == {"person": 4, "bus": 1}
    assert as_json["detections"] == detected["detections"]

    revoked = owner.run("share", "revoke", link_id)
    assert revoked.stdout.strip() == link_id
    assert f"Share link {link_id} is revoked" in revoked.stderr
    assert owner.run("share", "list").stdout.splitlines()[1].split()[2] == "revoked"

    refused = recipient.run("share", "show", url, expect=1)
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: this share link was revoked by its owner (HTTP 404")
    assert "share_link_revoked" in refused.stderr and "Traceback" not in refused.stderr
