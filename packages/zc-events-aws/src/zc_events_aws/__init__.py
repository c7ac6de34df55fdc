"""AWS helpers for zc-events: S3 helpers, email events, and the S3 claim-check middleware."""
