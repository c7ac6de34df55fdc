"""Backends shipped with the core."""
