"""The CLI's saved sessions: `$XDG_CONFIG_HOME/objectvision/credentials.json`.

One entry per API URL, so a developer can be logged in to a local stack and to production
at once. The file holds live tokens, so it is created 0600 (in a 0700 folder) before anything
is written to it, and replaced atomically so a crash never leaves half a file.
"""

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from objectvision_client.models import TokenPair

FILE_MODE = 0o600
DIR_MODE = 0o700


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/objectvision`, else `~/.config/objectvision` (XDG Base Directory)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "objectvision"


def credentials_path(environ: Mapping[str, str] | None = None) -> Path:
    return config_dir(environ) / "credentials.json"


@dataclass(frozen=True)
class SavedSession:
    email: str
    access_token: str
    refresh_token: str

    def tokens(self) -> TokenPair:
        return TokenPair(
            access_token=self.access_token, refresh_token=self.refresh_token, expires_in=0
        )


def _key(api_url: str) -> str:
    return api_url.rstrip("/")


class CredentialStore:
    """Read and write saved sessions in one file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or credentials_path()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # Unreadable or corrupt: treated as empty; the next login rewrites it.
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 from the start: the tokens are never readable by
        # others, not even for the moment between creating and chmod-ing.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self, api_url: str) -> SavedSession | None:
        entry = self._read().get("sessions", {}).get(_key(api_url))
        if not isinstance(entry, dict):
            return None
        try:
            return SavedSession(
                email=str(entry.get("email", "")),
                access_token=entry["access_token"],
                refresh_token=entry["refresh_token"],
            )
        except KeyError:
            return None

    def save(self, api_url: str, session: SavedSession) -> None:
        data = self._read()
        sessions = data.get("sessions")
        if not isinstance(sessions, dict):
            sessions = {}
        sessions[_key(api_url)] = asdict(session)
        self._write({**data, "sessions": sessions})

    def update_tokens(self, api_url: str, tokens: TokenPair | None) -> None:
        """Keep a refreshed pair (or forget the session when `tokens` is None)."""
        if tokens is None:
            self.remove(api_url)
            return
        current = self.load(api_url)
        email = current.email if current else ""
        self.save(api_url, SavedSession(email, tokens.access_token, tokens.refresh_token))

    def remove(self, api_url: str) -> None:
        data = self._read()
        sessions = data.get("sessions")
        if isinstance(sessions, dict) and sessions.pop(_key(api_url), None) is not None:
            self._write({**data, "sessions": sessions})
