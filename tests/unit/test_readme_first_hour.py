"""The README's first hour is what the code does: the commands and options it names exist, and the
lines it shows are the demo's own."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from carewatch.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEMO = (ROOT / "src" / "carewatch" / "demo.py").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def section() -> str:
    start = README.index("## The first hour")
    return README[start:README.index("\n## ", start + 1)]


def test_the_walkthrough_goes_from_clone_to_the_board_in_five_steps() -> None:
    text = section()
    assert "(five minutes)" in text.splitlines()[0]
    steps = re.findall(r"^(\d)\. \*\*", text, re.M)
    assert steps == ["1", "2", "3", "4", "5"]
    assert "git clone" in text and "bash ops/setup && .venv/bin/carewatch demo" in text
    assert "open http://127.0.0.1:8000/board and paste the safeguarding token" in text
    assert "source .carewatch/env" in text


def test_every_command_and_demo_option_it_names_exists() -> None:
    commands = _subcommands()
    for name in re.findall(r"(?:`|/bin/)carewatch ([a-z][a-z-]+)", README):
        assert name in commands, f"README names `carewatch {name}`, which does not exist"
    demo_options = {s for a in commands["demo"]._actions for s in a.option_strings}
    for option in re.findall(r"`(--[a-z-]+)`", section()):
        assert option in demo_options, option


def test_the_lines_it_shows_are_the_demos() -> None:
    text = section()
    assert "demo: alert board: open " in text and '"demo: alert board: open ' in DEMO
    assert "demo: ready tokens (Authorization: Bearer <token>), each on a real id of the simulated data:" in text
    assert "ready tokens (Authorization: Bearer <token>), each on a real id of the simulated data:" in DEMO
    assert re.search(r"demo: simulated time \w{3} \d\d \w{3} \d\d:\d\d \w+; \d+/\d+ live events sent; ", text)
    assert 'print(f"demo: simulated time ' in DEMO
    for variable in ("CAREWATCH_DEMO_ADMIN_TOKEN",):
        assert variable in text
