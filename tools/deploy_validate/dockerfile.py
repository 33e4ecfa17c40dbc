"""Dockerfiles and .dockerignore, read statically (no Docker engine needed).

``parse`` follows the Dockerfile syntax the repository uses: ``\\`` line continuations,
comment lines (also inside continuations), parser directives, exec (JSON) and shell forms.
``DockerIgnore`` implements Docker's matching (Go filepath.Match plus ``**``, ``!`` exceptions,
last match wins, a matched directory excludes everything below it).

One Dockerfile builds several images, one per final stage (``image_stages``), so the image
rules (non-root, HEALTHCHECK, STOPSIGNAL, the venv from the builder) apply to each of those
stages together with the stages it starts FROM (``lineage``); ``stage_args`` tells docker-bake.hcl's
checks which build arguments a stage reads.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from deploy_validate import REPO_ROOT

# Every Dockerfile in the repository: the one all Python images build from (one stage per kind
# of image; docker-bake.hcl picks the stage and the build arguments), and the CPU Triton's.
PYTHON_DOCKERFILE = "deploy/docker/Dockerfile"
DOCKERFILES = (PYTHON_DOCKERFILE, "deploy/triton-cpu/Dockerfile")
PYTHON_BASE = "python:3.11-slim"
APP_UID = "10001"
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


@dataclass
class Instruction:
    keyword: str
    value: str
    line: int
    flags: dict[str, str] = field(default_factory=dict)

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        text = self.value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return None
            if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
                return parsed
        return None

    def words(self) -> list[str]:
        return self.exec_form() or shlex.split(self.value, posix=True)


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, continuations joined, flags (--from=...) split off."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue  # blank, comment or parser directive
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        line = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, rest = line.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        instructions.append(Instruction(keyword.upper(), rest, start, flags))
    if buffer:
        raise ValueError("Dockerfile ends inside a line continuation")
    return instructions


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.value.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name, []))
        elif result:
            result[-1].instructions.append(instruction)
    return result


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.value.partition("=")
            values[name.strip()] = default.strip()
    return values


def env_pairs(instruction: Instruction) -> list[tuple[str, str]]:
    """KEY=VALUE pairs of an ENV (or ARG) instruction."""
    words = shlex.split(instruction.value, posix=True)
    if len(words) >= 2 and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # legacy `ENV KEY value`
    return [tuple(word.split("=", 1)) if "=" in word else (word, "") for word in words]


# ---- .dockerignore --------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i : i + 2] == "**":
                if pattern[i + 2 : i + 3] == "/":
                    out += "(?:.*/)?"
                    i += 3
                else:
                    out += ".*"
                    i += 2
                continue
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i)
            out += pattern[i : end + 1].replace("[!", "[^") if end > i else re.escape(char)
            i = end if end > i else i
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


@dataclass
class DockerIgnore:
    rules: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def load(cls, path: Path) -> DockerIgnore:
        rules = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = line[1:].strip() if exception else line
            pattern = str(Path(pattern.lstrip("/"))).replace("\\", "/")
            rules.append((exception, _pattern_regex(pattern)))
        return cls(rules)

    def excluded(self, relative: str) -> bool:
        """Whether a context path (or a directory above it) is excluded."""
        parts = relative.strip("/").split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for exception, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                result = not exception
        return result


# ---- stages ---------------------------------------------------------------------------------


def _by_name(all_stages: list[Stage]) -> dict[str, Stage]:
    return {s.name: s for s in all_stages if s.name}


def _copied_from(stage: Stage) -> set[str]:
    return {
        i.flags["from"] for i in stage.instructions if i.keyword == "COPY" and "from" in i.flags
    }


def image_stages(all_stages: list[Stage]) -> list[Stage]:
    """The stages an image is built from (bake's ``target``): those no other stage starts
    FROM or copies from."""
    used = {s.base for s in all_stages}.union(*(_copied_from(s) for s in all_stages))
    return [s for s in all_stages if s.name is None or s.name not in used]


def lineage(stage: Stage, all_stages: list[Stage]) -> list[Stage]:
    """The stage and those it starts FROM, the oldest first."""
    by_name = _by_name(all_stages)
    chain = [stage]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def needed_stages(stage: Stage, all_stages: list[Stage]) -> list[Stage]:
    """Every stage that building ``stage`` runs: its lineage and what they copy from."""
    by_name = _by_name(all_stages)
    needed: list[Stage] = []
    pending = [stage]
    while pending:
        for ancestor in lineage(pending.pop(), all_stages):
            if ancestor not in needed:
                needed.append(ancestor)
                pending += [by_name[n] for n in _copied_from(ancestor) if n in by_name]
    return needed


def stage_args(stage: Stage, all_stages: list[Stage]) -> dict[str, str | None]:
    """The build arguments a stage's build reads: name -> default (None: no default, so the
    build must set it)."""
    found: dict[str, str | None] = {}
    for needed in needed_stages(stage, all_stages):
        for instruction in needed.instructions:
            if instruction.keyword == "ARG":
                name, sep, default = instruction.value.partition("=")
                found[name.strip()] = default.strip() if sep else None
    return found


# ---- rules ----------------------------------------------------------------------------------


def _copy_sources(instruction: Instruction) -> list[str]:
    words = instruction.words()
    return words[:-1]


def _makefile_uv_version() -> str | None:
    match = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    return match.group(1) if match else None


_RUNTIME_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _external_base(stage: Stage, all_stages: list[Stage], args: dict[str, str]) -> str:
    base = lineage(stage, all_stages)[0].base
    return args.get(base.strip("${}"), base)


def _image_problems(label: str, instructions: list[Instruction], python: bool) -> list[str]:
    """Rules for one image, given every instruction of its stage and the stages it starts
    FROM (oldest first)."""
    problems = []
    user = [i for i in instructions if i.keyword == "USER"]
    if not user or user[-1].value.split(":")[0] in ("root", "0"):
        problems.append(f"{label}: the image must switch to a non-root USER")
    elif python and user[-1].value.split(":")[0] != APP_UID:
        problems.append(f"{label}: USER must be uid {APP_UID}")
    health = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    if not health:
        problems.append(f"{label}: no HEALTHCHECK (HEALTHCHECK NONE for one-shots)")
    elif health[-1].value.split()[:1] == ["NONE"] and any(
        i.keyword == "EXPOSE" for i in instructions
    ):
        problems.append(f"{label}: it EXPOSEs ports, so it is long-running and needs a HEALTHCHECK")
    if not any(i.keyword == "STOPSIGNAL" and i.value == "SIGTERM" for i in instructions):
        problems.append(f"{label}: no STOPSIGNAL SIGTERM")
    entrypoint = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    if python and (not entrypoint or entrypoint[-1].exec_form() is None):
        problems.append(f"{label}: ENTRYPOINT must be in exec form (PID 1 gets SIGTERM)")
    if python and not any(
        i.keyword == "COPY" and i.flags.get("from") == "builder" and "/opt/venv" in i.value
        for i in instructions
    ):
        problems.append(f"{label}: must copy /opt/venv from the builder stage")
    # ENTRYPOINT, CMD and HEALTHCHECK see no build arguments, only the image's environment.
    environment = {k for i in instructions if i.keyword == "ENV" for k, _ in env_pairs(i)}
    for instruction in (
        i for i in instructions if i.keyword in ("ENTRYPOINT", "CMD", "HEALTHCHECK")
    ):
        for name in _RUNTIME_VARIABLE.findall(instruction.value):
            if name not in environment:
                problems.append(
                    f"{label}:{instruction.line}: {instruction.keyword} reads ${name}, "
                    "which no ENV of the image sets"
                )
    return problems


def check(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """Problems of one Dockerfile (build context = the repository root)."""
    relative = str(path.relative_to(root))
    instructions = parse(path.read_text(encoding="utf-8"))
    all_stages = stages(instructions)
    args = global_args(instructions)
    problems: list[str] = []
    ignore = DockerIgnore.load(root / ".dockerignore")

    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for key, _ in env_pairs(instruction):
                if _SECRET_NAME.search(key):
                    problems.append(
                        f"{relative}:{instruction.line}: {instruction.keyword} {key} looks like a"
                        " secret: secrets come from the orchestrator at run time, never the image"
                    )
        if instruction.keyword in ("COPY", "ADD") and "from" not in instruction.flags:
            for source in _copy_sources(instruction):
                if not (root / source).exists():
                    problems.append(f"{relative}:{instruction.line}: COPY source {source} missing")
                elif ignore.excluded(source.rstrip("/")):
                    problems.append(f"{relative}:{instruction.line}: {source} is .dockerignored")
        if instruction.keyword == "ADD":
            problems.append(f"{relative}:{instruction.line}: use COPY, not ADD")
    if not all_stages:
        return [*problems, f"{relative}: no FROM"]
    python = any(_external_base(s, all_stages, args).startswith("python:") for s in all_stages)
    for image in image_stages(all_stages):
        label = f"{relative} stage {image.name or '(unnamed)'}"
        chain = [i for s in lineage(image, all_stages) for i in s.instructions]
        problems += _image_problems(label, chain, python)

    if python:
        if len(all_stages) < 2 or all_stages[0].name != "builder":
            problems.append(f"{relative}: must be multi-stage, starting FROM ... AS builder")
        bases = {_external_base(s, all_stages, args) for s in all_stages}
        if bases != {PYTHON_BASE}:
            problems.append(f"{relative}: stages must all use {PYTHON_BASE}, got {sorted(bases)}")
        builder_text = " ".join(i.value for i in all_stages[0].instructions)
        for needed in ("uv sync", "--frozen", "--no-dev", "--no-editable"):
            if needed not in builder_text:
                problems.append(f"{relative}: builder must run `uv sync` with {needed}")
        uv_arg = next(
            (
                v
                for i in all_stages[0].instructions
                if i.keyword == "ARG"
                for k, v in env_pairs(i)
                if k == "UV_VERSION"
            ),
            None,
        )
        if uv_arg != _makefile_uv_version():
            problems.append(f"{relative}: UV_VERSION {uv_arg} differs from the Makefile's")
    return problems


def load_stages(path: Path) -> list[Stage]:
    """A Dockerfile's stages, parsed from disk."""
    return stages(parse(path.read_text(encoding="utf-8")))


def validate(root: Path = REPO_ROOT) -> list[str]:
    problems = []
    for relative in DOCKERFILES:
        path = root / relative
        problems += check(path, root) if path.exists() else [f"{relative}: missing"]
    ignore = DockerIgnore.load(root / ".dockerignore")
    for must_exclude in (".env", ".git", ".venv", "k8s", "tests", "docs"):
        if not ignore.excluded(must_exclude):
            problems.append(f".dockerignore must exclude {must_exclude}")
    return problems
