"""What a sandbox child may use (ADR 0040, 0041, 0043).

A module of its own, importing nothing: the settings build it, and the child itself imports
it, which must start fast (it starts once per upload probed and per video job run).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """Bytes of address space and seconds of CPU (None: a long-lived child, whose work the
    parent times instead); and whether a child the kernel could not fully confine (ADR 0041)
    must refuse to read anything instead of reading it with what it has."""

    memory_bytes: int
    cpu_seconds: int | None
    require_confinement: bool = False
