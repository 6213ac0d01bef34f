"""Roles, scopes, bearer parsing, the token cache and token storage against real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from carewatch.security.roles import Role, TokenSpecError, Viewer, checked_role_scope
from carewatch.security.tokens import (
    TokenCache,
    authenticate,
    bearer_secret,
    create_token,
    list_tokens,
    new_secret,
    revoke_token,
    secret_hash,
)


@pytest.mark.parametrize(("role", "scope", "expected"), [
    ("admin", None, (Role.ADMIN, None)),
    ("commissioner", "LA-1", (Role.COMMISSIONER, "LA-1")),
    ("SAFEGUARDING", " LA-1 ", (Role.SAFEGUARDING, "LA-1")),
    ("provider", "PRV-1", (Role.PROVIDER, "PRV-1")),
    ("ingest", "PRV-1", (Role.INGEST, "PRV-1")),
])
def test_valid_role_scope(role: str, scope: str | None, expected: tuple[Role, str | None]) -> None:
    assert checked_role_scope(role, scope) == expected


@pytest.mark.parametrize(("role", "scope", "message"), [
    ("admin", "LA-1", "takes no --scope"),
    ("commissioner", None, "needs --scope <commissioner id>"),
    ("safeguarding", "", "needs --scope <commissioner id>"),
    ("provider", None, "needs --scope <provider id>"),
    ("ingest", "  ", "needs --scope <provider id>"),
    ("ingest", "PRV 1", "no spaces"),
    ("root", None, "unknown role 'root'"),
])
def test_invalid_role_scope_says_why(role: str, scope: str | None, message: str) -> None:
    with pytest.raises(TokenSpecError, match=message):
        checked_role_scope(role, scope)


def test_secrets_are_high_entropy_and_distinct() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    assert all(s.startswith("cw_") and len(s) == 46 for s in secrets)


def test_bearer_parsing_accepts_only_our_shape() -> None:
    secret = new_secret()
    assert bearer_secret(f"Bearer {secret}") == secret
    assert bearer_secret(f"bearer   {secret} ") == secret
    assert bearer_secret(secret) is None  # the scheme is required
    assert bearer_secret(f"Basic {secret}") is None
    assert bearer_secret("Bearer cw_short") is None
    assert bearer_secret(f"Bearer {secret}x") is None
    assert bearer_secret(None) is None
    assert bearer_secret("Bearer " + "a" * 5000) is None


def test_cache_expires_entries_and_is_bounded() -> None:
    now = [100.0]
    cache = TokenCache(ttl_seconds=5, max_entries=2, monotonic=lambda: now[0])
    viewer = Viewer(Role.PROVIDER, "PRV-1", 1)
    cache.put("a", viewer)
    assert cache.get("a") == viewer
    now[0] += 4.9
    assert cache.get("a") == viewer
    now[0] += 0.2
    assert cache.get("a") is None
    cache.put("a", viewer)
    cache.put("b", viewer)
    cache.put("c", viewer)
    assert cache.get("a") is None and cache.get("c") == viewer


@pytest.mark.services
async def test_create_authenticate_revoke(fresh_database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_database_url) as conn:
        created = await create_token(conn, "commissioner", "LA-1", name="portal")
        await conn.commit()
        row = await (await conn.execute("SELECT secret_hash FROM api_tokens WHERE id = %s",
                                        (created.id,))).fetchone()
        assert row is not None and row[0] == secret_hash(created.secret) and created.secret not in row[0]

        now = [0.0]
        cache = TokenCache(ttl_seconds=5, monotonic=lambda: now[0])
        viewer = await authenticate(conn, f"Bearer {created.secret}", cache)
        assert viewer == Viewer(Role.COMMISSIONER, "LA-1", created.id, "portal")
        assert await authenticate(conn, f"Bearer {new_secret()}", cache) is None
        assert await authenticate(conn, None, cache) is None

        assert await revoke_token(conn, created.id)
        await conn.commit()
        assert not await revoke_token(conn, created.id)  # already revoked
        # Within the cache window the revoked token still passes; after it, never again.
        assert await authenticate(conn, f"Bearer {created.secret}", cache) == viewer
        now[0] += 5.0
        assert await authenticate(conn, f"Bearer {created.secret}", cache) is None
        assert await authenticate(conn, f"Bearer {created.secret}") is None

        records = await list_tokens(conn)
        assert [(r.id, r.role, r.scope, r.revoked_at is not None, r.last_used_at is not None)
                for r in records] == [(created.id, Role.COMMISSIONER, "LA-1", True, True)]


@pytest.mark.services
async def test_database_refuses_scope_role_mismatch(fresh_database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_database_url) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO api_tokens (role, scope, secret_hash) VALUES ('admin', 'LA-1', 'x')")
