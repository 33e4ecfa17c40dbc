"""Talking to Triton: the served model, its class names and the micro-batcher in front of it."""
