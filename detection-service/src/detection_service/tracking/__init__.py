"""Following objects from frame to frame of one video or stream (ADR 0038)."""
