"""API tokens: created with the command line tool, shown once, stored as a SHA-256 hash.

A secret is `cw_` + 32 random bytes (urlsafe base64). See 003_tokens.sql for why a fast
hash is the right one for secrets of that entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from carewatch.security.roles import Role, Viewer, checked_role_scope

SECRET_PREFIX = "cw_"
_SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of the urlsafe alphabet; anything else is not ours.
_SECRET_SHAPE = re.compile(r"cw_[A-Za-z0-9_-]{43}")
_BEARER = re.compile(r"\s*bearer\s+(\S+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class CreatedToken:
    """A new token; `secret` exists only here and is never stored."""

    id: int
    role: Role
    scope: str | None
    name: str
    secret: str


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: Role
    scope: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def bearer_secret(authorization: str | None) -> str | None:
    """The secret in an `Authorization: Bearer <secret>` value, or None if it cannot be one of ours."""
    if not authorization or len(authorization) > 256:
        return None
    match = _BEARER.fullmatch(authorization)
    if match is None:
        return None
    secret = match.group(1)
    return secret if _SECRET_SHAPE.fullmatch(secret) else None


async def create_token(conn: AsyncConnection, role: str, scope: str | None = None,
                       name: str = "") -> CreatedToken:
    """Store a new token's hash and return it with its secret (TokenSpecError for a bad role/scope)."""
    checked_role, checked_scope = checked_role_scope(role, scope)
    secret = new_secret()
    cur = await conn.execute(
        "INSERT INTO api_tokens (name, role, scope, secret_hash) VALUES (%s, %s, %s, %s) RETURNING id",
        (name, checked_role.value, checked_scope, secret_hash(secret)),
    )
    row = await cur.fetchone()
    assert row is not None
    return CreatedToken(int(row[0]), checked_role, checked_scope, name, secret)


async def list_tokens(conn: AsyncConnection) -> list[TokenRecord]:
    cur = await conn.execute(
        "SELECT id, name, role, scope, created_at, revoked_at, last_used_at FROM api_tokens ORDER BY id"
    )
    return [TokenRecord(int(r[0]), r[1], Role(r[2]), r[3], r[4], r[5], r[6]) for r in await cur.fetchall()]


async def revoke_token(conn: AsyncConnection, token_id: int) -> bool:
    """Revoke a token; False if there is no such token or it was already revoked."""
    cur = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (token_id,)
    )
    return cur.rowcount == 1


class TokenCache:
    """Recently confirmed tokens, by secret hash, for `ttl_seconds`.

    Keeps the database out of every request while a revocation still takes effect within
    `ttl_seconds`. Only valid tokens are kept, so garbage guesses cannot fill it; it is
    bounded all the same.
    """

    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[Viewer, float]] = OrderedDict()

    def get(self, digest: str) -> Viewer | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        viewer, expires = entry
        if self._monotonic() >= expires:
            del self._entries[digest]
            return None
        return viewer

    def put(self, digest: str, viewer: Viewer) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[digest] = (viewer, self._monotonic() + self.ttl_seconds)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def authenticate(conn: AsyncConnection, bearer: str | None,
                       cache: TokenCache | None = None) -> Viewer | None:
    """The viewer behind an Authorization header value, or None for a missing, unknown or revoked token."""
    secret = bearer_secret(bearer)
    if secret is None:
        return None
    digest = secret_hash(secret)
    if cache is not None and (cached := cache.get(digest)) is not None:
        return cached
    cur = await conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE secret_hash = %s AND revoked_at IS NULL"
        " RETURNING id, name, role, scope, secret_hash",
        (digest,),
    )
    row = await cur.fetchone()
    await conn.commit()
    # The index lookup already matched; the constant-time compare guards against any
    # collation or padding surprise in how the database compared the text.
    if row is None or not hmac.compare_digest(str(row[4]), digest):
        return None
    viewer = Viewer(Role(row[2]), row[3], int(row[0]), row[1])
    if cache is not None:
        cache.put(digest, viewer)
    return viewer
