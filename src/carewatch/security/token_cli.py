"""`carewatch token create|list|revoke`: the secret alone on standard output, the rest on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg

from carewatch.security.roles import TokenSpecError
from carewatch.security.tokens import create_token, list_tokens, revoke_token
from carewatch.services import check_postgres
from carewatch.settings import Settings


def run_token_command(settings: Settings, args: argparse.Namespace) -> int:
    check_postgres(settings.database_url)
    try:
        return asyncio.run(_run(settings.database_url, args))
    except TokenSpecError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 2
    except psycopg.errors.UndefinedTable:
        print("token: the database has no api_tokens table yet; run `carewatch migrate` first",
              file=sys.stderr)
        return 2


async def _run(database_url: str, args: argparse.Namespace) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        if args.token_command == "create":
            token = await create_token(conn, args.role, args.scope, args.name)
            await conn.commit()
            scope = f" scope {token.scope}" if token.scope else ""
            print(f"token: created id {token.id}, role {token.role.value}{scope}; "
                  "the secret below is shown once and cannot be recovered", file=sys.stderr)
            print(token.secret, flush=True)
            return 0
        if args.token_command == "list":
            for t in await list_tokens(conn):
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
                used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
                print(f"{t.id}\t{t.role.value}\t{t.scope or '-'}\t{t.name or '-'}\t{state}\tlast used {used}",
                      file=sys.stderr)
            return 0
        revoked = await revoke_token(conn, args.id)
        await conn.commit()
        if not revoked:
            print(f"token: no active token with id {args.id}", file=sys.stderr)
            return 1
        print(f"token: revoked id {args.id}; API replicas stop accepting it within a few seconds",
              file=sys.stderr)
        return 0
