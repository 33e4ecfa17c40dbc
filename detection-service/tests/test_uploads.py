"""The display filename of an upload: one printable path component, never hidden."""

import pytest

from detection_service.images.uploads import MAX_FILENAME_CHARS, sanitize_filename


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        (". .x", "x"),  # regression: a dot after a space survived the single lstrip(".")
        (" . . .hidden.jpg", "hidden.jpg"),
        ("..", ""),
        ("bus\r\n.jpg", "bus.jpg"),
        ("  holiday photo.jpg  ", "holiday photo.jpg"),
    ],
)
def test_filenames_are_reduced_to_one_visible_component(name: str, shown: str) -> None:
    assert sanitize_filename(name) == shown


def test_filenames_are_capped() -> None:
    assert len(sanitize_filename("a" * 1000)) == MAX_FILENAME_CHARS
