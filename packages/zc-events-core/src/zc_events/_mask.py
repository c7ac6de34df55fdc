"""Masking secrets in the error messages and log lines zc-events produces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "is_secret_name", "mask_secrets"]

#: What a masked value is replaced with.
MASK = "***"

_SECRET_NAME = re.compile(
    r"secret|passw|pwd|token|credential|authoriz|private|signature|"
    r"(?:api|access|auth|signing|encryption|session|master)[_.-]?keys?\b",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]+@")


def is_secret_name(name: str) -> bool:
    """True for names that usually hold secrets: ``*secret*``, ``*password*``, ``*token*``,
    ``*credential*``, ``authorization``, ``api_key``, ``aws_secret_access_key``, ..."""
    return bool(_SECRET_NAME.search(name))


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` safe to print: values under secret-looking names (see
    :func:`is_secret_name`) in dicts, at any depth, become ``'***'``, and passwords in URLs
    (``amqp://user:***@host``) are masked in every string. Other values are returned as they are.

    Plugins use it for every error message and log line that may show settings or options.
    """
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<pre>***@", value) if "://" in value else value
    if isinstance(value, Mapping):
        return {
            k: MASK
            if isinstance(k, str) and is_secret_name(k) and value[k] not in (None, "")
            else mask_secrets(value[k])
            for k in value
        }
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(mask_secrets(v) for v in value)
    return value
