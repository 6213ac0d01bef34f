"""`carewatch token`: a scope must name a commissioner or provider the database knows (or --force, with a
warning); `token list` prints a header over aligned columns."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from procs import ROOT

pytestmark = pytest.mark.services


def token(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carewatch", "token", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CAREWATCH_DATABASE_URL": url})


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM api_tokens").fetchone()
    return int(row[0]) if row else 0


def test_an_unknown_scope_is_refused_and_force_makes_it_with_a_warning(fresh_database_url: str) -> None:
    url = fresh_database_url
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO commissioners (commissioner_id, name, registered_at) VALUES "
                     "('LA-WIRRAL', 'Wirral', now()), ('LA-LIVERPOOL', 'Liverpool', now())")
        conn.execute("INSERT INTO providers (provider_id, name, registered_at) VALUES ('PRV-ACORN', 'Acorn', now())")
    refused = token(url, "create", "--role", "commissioner", "--scope", "LA-WIRAL")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "token: no commissioner 'LA-WIRAL' in this database (known: LA-LIVERPOOL, LA-WIRRAL): check the id, or "
        "add --force to create the token anyway (for a commissioner whose first events have not arrived yet)")
    refused = token(url, "create", "--role", "ingest", "--scope", "LA-WIRRAL")  # a provider's role
    assert refused.returncode == 2 and "no provider 'LA-WIRRAL' in this database (known: PRV-ACORN)" in refused.stderr
    assert _count(url) == 0

    made = token(url, "create", "--role", "safeguarding", "--scope", "LA-WIRRAL", "--name", "lead")
    assert made.returncode == 0 and made.stdout.strip().startswith("cw_") and "warning" not in made.stderr
    forced = token(url, "create", "--role", "provider", "--scope", "PRV-NEW", "--force")
    assert forced.returncode == 0 and forced.stdout.strip().startswith("cw_")
    assert "token: warning: no provider 'PRV-NEW' in this database (known: PRV-ACORN); creating the token " \
           "anyway (--force)" in forced.stderr
    assert _count(url) == 2


def test_token_list_has_a_header_over_aligned_columns(fresh_database_url: str) -> None:
    url = fresh_database_url
    empty = token(url, "list")
    assert empty.returncode == 0 and empty.stdout == "" and "no tokens yet" in empty.stderr
    assert token(url, "create", "--role", "admin", "--name", "ops team").returncode == 0
    assert token(url, "create", "--role", "commissioner", "--scope", "LA-SOMEWHERE", "--force").returncode == 0
    listed = token(url, "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "ROLE", "SCOPE", "NAME", "STATE", "LAST", "USED"]
    assert len(lines) == 3
    assert lines[1].split()[1:4] == ["admin", "-", "ops"] and lines[2].split()[1:3] == ["commissioner", "LA-SOMEWHERE"]
    scope = lines[0].index("SCOPE")  # each row's scope starts under the header's
    assert lines[1][scope] == "-" and lines[2][scope:].startswith("LA-SOMEWHERE")
    assert "cw_" not in listed.stdout  # never a secret
