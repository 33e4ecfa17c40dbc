"""Per-user webhooks: registration, destination safety and signed delivery."""
