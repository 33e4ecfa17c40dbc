"""The console draws each class in the colour the server's annotated images use."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_consoles_palette_is_generated_from_the_servers() -> None:
    """gateway/.../console/js/palette.js is written by tools/generate_console_palette.py from
    detection_service.pipeline.annotate.PALETTE; a hand edit or a changed palette fails here."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "generate_console_palette.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
