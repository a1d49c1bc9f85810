"""The one redaction rule: which headers are secret, and how a secret is hidden."""

from __future__ import annotations

from ._redact import (
    REDACTED,
    is_secret_header,
    redact,
    redact_headers,
    redact_text,
)

__all__ = [
    "REDACTED",
    "is_secret_header",
    "redact",
    "redact_headers",
    "redact_text",
]
