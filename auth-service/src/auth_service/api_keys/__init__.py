"""Long-lived keys for scripts and integrations, shown once and stored as a hash."""
