"""Detection over gRPC: images in, objects out, through one micro-batcher in front of Triton."""
