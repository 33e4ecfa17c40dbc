"""What the child process that reads one uploaded video may use (ADR 0040).

A module of its own, importing nothing: the settings build it, and the child itself imports
it, which must start fast (it starts once per upload probed and per video job run).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """Bytes of address space and seconds of CPU; and whether a child the kernel could not
    fully confine (ADR 0041) must refuse to read the video instead of reading it with what it
    has."""

    memory_bytes: int
    cpu_seconds: int
    require_confinement: bool = False
