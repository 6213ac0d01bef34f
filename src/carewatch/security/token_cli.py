"""`carewatch token create|list|revoke`: the secret alone on standard output, the rest on stderr.

A scope must name a commissioner or provider the database knows (a typo would make a token that
sees nothing); `--force` creates it anyway, for one whose first events have not arrived yet.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import psycopg

from carewatch.security.roles import Role, TokenSpecError, checked_role_scope
from carewatch.security.tokens import TokenRecord, create_token, list_tokens, revoke_token
from carewatch.settings import Settings

# Where each scoped role's ids live: (table, id column, what to call it).
SCOPE_TABLES: dict[Role, tuple[str, str, str]] = {
    Role.COMMISSIONER: ("commissioners", "commissioner_id", "commissioner"),
    Role.SAFEGUARDING: ("commissioners", "commissioner_id", "commissioner"),
    Role.PROVIDER: ("providers", "provider_id", "provider"),
    Role.INGEST: ("providers", "provider_id", "provider"),
}
LIST_HEADER = ("ID", "ROLE", "SCOPE", "NAME", "STATE", "LAST USED")


def run_token_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(settings.database_url, args))
    except TokenSpecError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 2
    except psycopg.errors.UndefinedTable:
        print("token: the database has no api_tokens table yet; run `carewatch migrate` first",
              file=sys.stderr)
        return 2


async def unknown_scope(conn: psycopg.AsyncConnection[Any], role: Role, scope: str) -> str | None:
    """Why `scope` names nothing this role could see (with the ids it might have meant), or None."""
    table, column, kind = SCOPE_TABLES[role]
    query = psycopg.sql.SQL("SELECT {c} FROM {t} WHERE {c} = %s").format(
        c=psycopg.sql.Identifier(column), t=psycopg.sql.Identifier(table))
    if await (await conn.execute(query, (scope,))).fetchone():
        return None
    some = psycopg.sql.SQL("SELECT {c} FROM {t} ORDER BY {c} LIMIT 6").format(
        c=psycopg.sql.Identifier(column), t=psycopg.sql.Identifier(table))
    known = [str(r[0]) for r in await (await conn.execute(some)).fetchall()]
    listed = (f"known: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}" if known
              else f"no {kind} is registered yet")
    return f"no {kind} {scope!r} in this database ({listed})"


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _row(t: TokenRecord) -> tuple[str, ...]:
    state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
    used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
    return (str(t.id), t.role.value, t.scope or "-", t.name or "-", state, used)


async def _create(conn: psycopg.AsyncConnection[Any], args: argparse.Namespace) -> int:
    role, scope = checked_role_scope(args.role, args.scope)
    if scope is not None and (problem := await unknown_scope(conn, role, scope)) is not None:
        if not args.force:
            print(f"token: {problem}: check the id, or add --force to create the token anyway (for a "
                  f"{SCOPE_TABLES[role][2]} whose first events have not arrived yet)", file=sys.stderr)
            return 2
        print(f"token: warning: {problem}; creating the token anyway (--force)", file=sys.stderr)
    token = await create_token(conn, args.role, args.scope, args.name)
    await conn.commit()
    shown = f" scope {token.scope}" if token.scope else ""
    print(f"token: created id {token.id}, role {token.role.value}{shown}; "
          "the secret below is shown once and cannot be recovered", file=sys.stderr)
    print(token.secret, flush=True)
    return 0


async def _run(database_url: str, args: argparse.Namespace) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        if args.token_command == "create":
            return await _create(conn, args)
        if args.token_command == "list":
            tokens = await list_tokens(conn)
            if not tokens:
                print("token: no tokens yet; create one with `carewatch token create --role admin`",
                      file=sys.stderr)
                return 0
            print(table([LIST_HEADER, *(_row(t) for t in tokens)]), flush=True)
            return 0
        revoked = await revoke_token(conn, args.id)
        await conn.commit()
        if not revoked:
            print(f"token: no active token with id {args.id}", file=sys.stderr)
            return 1
        print(f"token: revoked id {args.id}; API replicas stop accepting it within a few seconds",
              file=sys.stderr)
        return 0
