"""Per-user settings the web app reads at start-up (theme, notifications)."""
