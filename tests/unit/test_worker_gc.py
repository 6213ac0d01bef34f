"""The worker collects its young generation every 50,000 allocations, with start-up's objects frozen."""

from __future__ import annotations

import gc

from carewatch.stream.worker import GC_OLDER, GC_YOUNG, tune_gc


def test_tune_gc_raises_the_thresholds_and_freezes_what_start_up_made() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (50_000, *GC_OLDER) == (GC_YOUNG, 20, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
