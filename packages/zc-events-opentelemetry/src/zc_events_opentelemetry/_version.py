"""The package version (the instrumentation scope's version)."""

__version__ = "1.0.0"
