"""A user's stored detections: images, results, listing and lookup."""
