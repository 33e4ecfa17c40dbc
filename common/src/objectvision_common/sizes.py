"""Byte counts as people read them, in the messages that refuse an upload for its size.

The detection service (video uploads) and the gateway (image and video uploads) both state
sizes in their errors; one function keeps the two saying the same size the same way.
"""


def readable_size(size: int) -> str:
    """``size`` bytes as bytes, KiB or MiB: "512 bytes", "1.5 KiB", "12.0 MiB"."""
    if size < 2**10:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 2**10:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"
