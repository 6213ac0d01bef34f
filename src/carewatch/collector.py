"""The cyclic garbage collector paused while the worker applies a batch (issue 12).

A batch keeps tens of thousands of objects alive until it ends (payloads, facts, ledgers, decisions),
and almost all of them are freed by reference counting when it does. While it runs, the collector's
young-generation passes (started by the net growth of tracked objects, which a batch causes) walk
those live objects again and again for nothing: in process, bench feed, batches of 8,000, 26 passes
took 14-16 us of CPU per event, about 6% of the batch path. Paused during the batch and resumed
after it, the same run made 2 passes (0.5 us per event), and the batch path's CPU went from 241 to
211 us per event (docs/throughput.md, "Fourth pass").

Cycles made during a batch are collected after it, by the collector's normal passes: what can pile up
meanwhile is bounded by one batch. A batch that waits for the database (pipeline/processor.py) or
to be tried again after an unexpected failure (stream/agents.handle_until_done) collects at each
retry (`collect_while_paused`), so an outage of any length does not pause collection with it.
(A module of its own at the top: the stream pauses the collector, the pipeline's retries collect.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block (nested blocks: until the outermost ends); the
    collector's state before the outermost block is restored after it."""
    global _depth
    enabled = gc.isenabled()
    if _depth == 0:
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and enabled:
            gc.enable()


def collect_while_paused() -> None:
    """Collect now if the collector is paused (a batch waiting to be tried again); else let it be."""
    if not gc.isenabled():
        gc.collect()
