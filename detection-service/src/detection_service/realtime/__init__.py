"""The realtime role (ADR 0019): ListModels, Detect and DetectStream from the inference
pipeline alone, with no database, Redis, storage or video decoder; the full service's
servicer extends the same RPCs."""
