"""stream/collector.collector_paused: no automatic collection while a batch is applied, restored after."""

from __future__ import annotations

import gc
from typing import Any

from carewatch.collector import collector_paused


def test_the_collector_is_paused_inside_and_restored_after_even_when_nested() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still runs
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_still_restores_the_collector() -> None:
    try:
        with collector_paused():
            raise ValueError("a batch failed")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_batch_waiting_to_be_tried_again_collects_what_it_made(monkeypatch: Any) -> None:
    from carewatch.collector import collect_while_paused

    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation) or 0)
    collect_while_paused()
    assert collected == []  # running normally: left to the collector
    with collector_paused():
        collect_while_paused()
    assert collected == [2]
