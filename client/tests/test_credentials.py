"""The CLI's credential file: where it lives, its permissions, one session per API URL."""

import json
import stat
from pathlib import Path

from objectvision_client.credentials import (
    CredentialStore,
    SavedSession,
    config_dir,
    credentials_path,
)
from objectvision_client.models import TokenPair

URL = "http://127.0.0.1:8000"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_path_follows_xdg_config_home(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert credentials_path(environ) == tmp_path / "objectvision" / "credentials.json"


def test_relative_or_missing_xdg_config_home_falls_back_to_home() -> None:
    assert config_dir({}) == Path.home() / ".config" / "objectvision"
    assert (
        config_dir({"XDG_CONFIG_HOME": "relative/dir"}) == Path.home() / ".config" / "objectvision"
    )


def test_file_is_created_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "config" / "objectvision" / "credentials.json"
    CredentialStore(path).save(URL, SavedSession("a@example.com", "access", "refresh"))
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_an_existing_loose_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{}")
    path.chmod(0o644)
    CredentialStore(path).save(URL, SavedSession("a@example.com", "access", "refresh"))
    assert _mode(path) == 0o600


def test_sessions_are_kept_per_api_url(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    store.save(URL + "/", SavedSession("local@example.com", "a1", "r1"))
    store.save("https://api.example.com", SavedSession("prod@example.com", "a2", "r2"))
    assert store.load(URL) == SavedSession("local@example.com", "a1", "r1")
    assert store.load("https://api.example.com/").email == "prod@example.com"
    assert store.load("http://elsewhere") is None


def test_refreshed_tokens_keep_the_email_and_none_forgets_the_session(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    store.save(URL, SavedSession("a@example.com", "old-access", "old-refresh"))
    store.update_tokens(
        URL, TokenPair(access_token="new-access", refresh_token="new-refresh", expires_in=900)
    )
    assert store.load(URL) == SavedSession("a@example.com", "new-access", "new-refresh")
    store.update_tokens(URL, None)
    assert store.load(URL) is None


def test_a_corrupt_file_reads_as_empty_and_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("not json")
    store = CredentialStore(path)
    assert store.load(URL) is None
    store.save(URL, SavedSession("a@example.com", "access", "refresh"))
    assert json.loads(path.read_text())["sessions"][URL]["refresh_token"] == "refresh"


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    for n in range(3):
        store.save(URL, SavedSession("a@example.com", f"access-{n}", "refresh"))
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]
