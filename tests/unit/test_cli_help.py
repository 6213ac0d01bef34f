"""`carewatch --help` and every command's: each option says what it means and its default, and the
environment variables are listed from settings.py, so help and code cannot drift apart."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from carewatch.cli import READS, build_parser
from carewatch.settings import Settings, variables


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) or "carewatch" for p, _ in COMMANDS])
def test_every_option_says_what_it_means_and_its_default(path: tuple[str, ...],
                                                         parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"carewatch {' '.join(path)}: {action.dest} has no help"
        if action.default not in (None, "", False) and action.option_strings:
            assert f"(default: {action.default})" in " ".join(text.split()), (path, action.dest)


def test_the_top_level_help_lists_every_environment_variable_with_default_and_meaning() -> None:
    done = subprocess.run([sys.executable, "-m", "carewatch", "--help"], capture_output=True, text=True,
                          check=True, timeout=30)
    for v in variables():
        line = next((ln for ln in done.stdout.splitlines() if ln.strip().startswith(v.name + " ")), None)
        assert line is not None, f"{v.name} is not in carewatch --help"
        assert f"[{v.default}]" in line and v.meaning in line


def test_every_setting_is_a_listed_variable_and_each_command_lists_what_it_reads() -> None:
    import dataclasses

    listed = {v.name for v in variables()}
    assert all(f.metadata.get("variable") in listed for f in dataclasses.fields(Settings))
    for name, parser in COMMANDS:
        if len(name) == 1 and name[0] in READS:
            text = parser.format_help()
            for variable in (*READS[name[0]], "CAREWATCH_LOG_FORMAT"):
                assert variable in text, f"carewatch {name[0]} --help does not list {variable}"


def test_the_api_help_shows_its_host_and_port_defaults() -> None:
    done = subprocess.run([sys.executable, "-m", "carewatch", "api", "--help"], capture_output=True, text=True,
                          check=True, timeout=30)
    flat = " ".join(done.stdout.split())
    assert "(default: 127.0.0.1)" in flat and "(default: 8000)" in flat
    assert "CAREWATCH_DATABASE_URL" in flat and "[postgresql://postgres@127.0.0.1:5432/carewatch]" in flat
