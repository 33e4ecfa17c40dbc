"""Following objects from frame to frame of one video or stream (ADR 0038), and counting
those that cross lines (ADR 0039)."""
