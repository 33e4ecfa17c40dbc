"""The `objectvision` command (client/) run as a subprocess, the way a script runs it.

The end-to-end tests check the real console script installed next to this interpreter, not
its functions called in-process, so that argument parsing, exit codes and what goes to stdout
or stderr are what a user gets. Each `CommandLine` has a config folder of its own, so saved
sessions never touch the developer's own or another test's, and the command sees only PATH,
that folder and the stack's URL: nothing from the developer's shell (an OBJECTVISION_API_KEY,
a proxy) changes what it does. Standard input is never a terminal, so it never prompts.
"""

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMAND = Path(sys.executable).with_name("objectvision")
# Long enough for a batch on a CPU-only stack; only a command that hangs ever reaches it.
TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class CommandLine:
    """`objectvision` pointed at `api_url` (OBJECTVISION_API_URL, so that a test can still
    pass --api-url), with `config_home` as its XDG_CONFIG_HOME."""

    api_url: str
    config_home: Path

    @property
    def credentials(self) -> Path:
        """Where `objectvision login` saves the session."""
        return self.config_home / "objectvision" / "credentials.json"

    def run(
        self,
        *args: str,
        expect: int = 0,
        input: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the command with `args` and asserts it exits with `expect`; `input` is its
        standard input (none when not given) and `extra_env` adds or overrides variables,
        such as OBJECTVISION_API_KEY."""
        env = {
            "PATH": "/usr/bin:/bin",
            "XDG_CONFIG_HOME": str(self.config_home),
            "OBJECTVISION_API_URL": self.api_url,
            **(extra_env or {}),
        }
        result = subprocess.run(
            [str(COMMAND), *args],
            env=env,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        assert result.returncode == expect, (
            f"objectvision {' '.join(args)} exited {result.returncode}, expected {expect}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result

    def json(self, *args: str) -> Any:
        """What the command prints with --json, parsed; it must succeed."""
        return json.loads(self.run(*args, "--json").stdout)
