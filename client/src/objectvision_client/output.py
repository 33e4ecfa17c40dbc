"""Plain-text output of the CLI: aligned tables and a progress bar. Pure formatting apart
from `ProgressBar`, which only writes to the stream it is given."""

from collections.abc import Sequence
from typing import TextIO

PROGRESS_WIDTH = 30


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell, two spaces apart; column indexes in `right` are
    right-aligned (numbers). Trailing spaces are trimmed; None prints as "-"."""
    cells = [[str(h) for h in headers]] + [
        ["-" if value is None else str(value) for value in row] for row in rows
    ]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells for {len(headers)} columns: {row}")
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def render_progress(done: int, total: int, *, width: int = PROGRESS_WIDTH, label: str = "") -> str:
    """`[##########--------------------] 3/9  33%` (done is clamped to 0..total)."""
    done = max(0, min(done, total)) if total > 0 else 0
    fraction = done / total if total > 0 else 0.0
    filled = round(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    text = f"[{bar}] {done}/{total} {round(fraction * 100):3d}%"
    return f"{label} {text}" if label else text


class ProgressBar:
    """Redraws one line in place on a terminal; elsewhere (logs, CI) prints a line per
    change so the output stays readable."""

    def __init__(self, stream: TextIO, *, label: str = "") -> None:
        self.stream = stream
        self.label = label
        self.interactive = stream.isatty()
        self.last: str | None = None

    def update(self, done: int, total: int, suffix: str = "") -> None:
        line = render_progress(done, total, label=self.label) + (f" {suffix}" if suffix else "")
        if line == self.last:
            return
        if self.interactive:
            padding = " " * max(0, len(self.last or "") - len(line))
            self.stream.write(f"\r{line}{padding}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = line

    def finish(self) -> None:
        if self.interactive and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()
