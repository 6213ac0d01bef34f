"""Errors a client may see in full, even in production where every other error is masked."""

from __future__ import annotations

from carewatch.security.limits import RefusedInput


class ClientError(RefusedInput):
    """A mistake in the request (a bad cursor, a page too large): its message helps the caller."""
