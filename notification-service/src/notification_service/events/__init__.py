"""The events stream: consuming it once per event, and turning events into deliveries."""
