"""Where a metered image came from (ADR 0030): a caller waiting for it (Detect,
DetectStream) or job work (batch items, video frames). Apart from the tables so that the
detector, which the database-free realtime role imports, can name them."""

SOURCE_CALLS = "calls"
SOURCE_JOBS = "jobs"
