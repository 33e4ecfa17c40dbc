"""Video files as background jobs: checked from their container before decoding, sampled,
detected frame by frame through the shared micro-batcher, annotated incrementally (ADR 0016)."""
