"""The benchmark's table: per-process rate, its share of the ceiling, and CPU time per event from /proc."""

from __future__ import annotations

import os
import time

from carewatch.bench import CpuMeter, Row, cpu_seconds, per_event_us, table


def test_the_table_gives_the_per_process_rate_its_share_of_the_ceiling_and_cpu_per_event() -> None:
    rows = [Row("1", 200_000.0, 20_000.0, 15_000.0, 60.0, 20.0),
            Row("2", 100_000.0, 10_000.0, 8_000.0, 80.0, None),
            Row("3", 150_000.0, 30_000.0, 20_000.0, 70.0, 30.0)]
    lines = table(rows, workers=2).splitlines()
    assert "worker CPU us/ev" in lines[0] and "postgres CPU us/ev" in lines[0]
    # Run 1: two processes at 20,000 together -> 10,000 each, 5.0% of a 200,000 ceiling.
    assert lines[1].split() == ["1", "200,000", "20,000", "15,000", "10,000", "5.0%", "60", "20"]
    assert lines[2].split()[-1] == "n/a"
    # Medians: ceiling 150,000, rate 20,000 (10,000 a process, 6.7%), CPU 70 and the median of 20 and 30.
    assert lines[4].split() == ["median", "150,000", "20,000", "15,000", "10,000", "6.7%", "70", "25"]


def test_cpu_time_is_read_from_proc_and_counted_per_event() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    spin_until = time.process_time() + 0.05
    while time.process_time() < spin_until:
        pass
    after = cpu_seconds(os.getpid())
    assert after is not None and after > before
    assert per_event_us(1.0, 1.5, 10_000) == 50.0
    assert per_event_us(None, 1.5, 10_000) is None
    assert cpu_seconds(2**22 + 12345) is None  # no such process
    meter = CpuMeter()
    # A backend that came and went before it was read is no reason to give up on the rest.
    assert meter.read({2**22 + 12345}) is None and meter.readable
    mine = meter.read({os.getpid()})
    assert mine is not None and mine >= after
    # A process that has exited keeps its last reading: the sum never goes back.
    meter.last[2**22 + 12346] = 5.0
    total = meter.read(set())
    assert total is not None and total >= mine + 5.0
