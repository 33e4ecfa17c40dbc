"""ObjectVision's Triton model repository tooling: the served YOLOv8 graph and a local launcher."""
