"""Plumbing shared by every ObjectVision service; never copied into a service."""
