"""Summaries of py-spy's raw (collapsed-stack) profiles: where the API's samples went."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"(.*) \((.*):\d+\)")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    function, file = m.groups()
    file = re.sub(r".*site-packages/", "", file)
    file = re.sub(r".*/src/", "", file)
    file = re.sub(r".*/lib/python3\.\d+/", "", file)
    return f"{function} ({file})"


def summarise(path: Path, top: int = 15, mark: str = "carewatch/") -> str:
    """The frames with most samples of their own, and Carewatch's frames by samples under them (markdown)."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if " " not in line:
            continue
        stack, count = line.rsplit(" ", 1)
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            under[f] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "| own samples | frame |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f}% | `{f}` |" for f, n in own.most_common(top)]
    lines += ["", f"| samples under | {mark} frame |", "|---|---|"]
    ours = [(f, n) for f, n in under.most_common() if mark in f and "cli.py" not in f and "__main__" not in f
            and "web.py" not in f]
    lines += [f"| {100 * n / total:.1f}% | `{f}` |" for f, n in ours[:top]]
    return "\n".join(lines)
