"""One taken batch applied as up to N lanes at once, split by partition (issue 12).

A batch's Python work and its SQL run one after the other: while the database works on a statement
the worker waits, and while the worker computes the database idles. Sub-batches of disjoint
partitions (up to CAREWATCH_WORKER_LANES, four by default), each in its own transaction on its own
connection, let one lane's Python run while another lane's statements are in the database. Much of a
lane's work is paid once per package, carer or shift it touches, so a lane wants a few thousand events
(docs/throughput.md "Fifth pass": batches of 16,000 in four lanes did better than 8,000 in two).

The lanes are joined before the next batch is taken, so faust sees exactly what it saw with one
lane: one batch in flight, acknowledged after every message in it was applied or rejected, and a
rebalance waits for it. Each partition's messages stay together and in their order, and no two
transactions of one worker ever hold messages of the same partition, so per-partition order holds as
it does with one lane. Two lanes meet each other as two worker processes meet (the carers' advisory
locks, shift rows locked for update, a reference written by the other lane released by the held-events
sweep), which the scale-out runs of `carewatch bench --workers N` check.

Alerts are queued for publishing by each lane right after its own commit, with nothing awaited in
between (pipeline/processor.py: recording and dead-lettering nothing, counting, then the listeners;
the publish queue waits only when 32 batches are already queued), so an alert both lanes change (a
carer's DOUBLE_BOOKED_CARER, decided under the carer's lock) is queued in commit order.

A batch that registers a commissioner or a provider is not split either: the packages and carers that
name them travel on other partitions, and in the other lane they would be held (their reference not
yet committed) and wait for the held-events sweep; registrations come in bulk when a council or a
provider is onboarded, and one transaction applies them with what names them.

A small batch (under a trickle) is not split: below `min_events` per lane one transaction costs less
than two, and the latency of a lone event does not improve by splitting.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


# What a message registering a commissioner or a provider holds (its type's name). A false alarm (the
# words inside some other text) only keeps a batch whole; a type written with JSON escapes is missed,
# and then what names it waits for the held-events sweep, as it would between two workers.
REGISTRATIONS = (b"commissioner.registered", b"provider.registered")


def registers_references(value: bytes | None) -> bool:
    """Whether a message's raw value looks like a commissioner's or a provider's registration."""
    return value is not None and any(marker in value for marker in REGISTRATIONS)


def split_by_partition(batch: Sequence[T], lanes: int, partition_of: Callable[[T], Hashable],
                       min_events: int = 0) -> list[list[T]]:
    """`batch` in at most `lanes` parts, each partition's items whole and in order in one part.

    Partitions are dealt largest first to the part with the fewest items so far, so the parts are
    about even. Every part gets at least `min_events` items: with too few for all the lanes, fewer
    parts are made; a batch of fewer than `min_events` x 2 items, or of one partition, stays whole.
    """
    if lanes <= 1 or len(batch) < 2 * max(min_events, 1):
        return [list(batch)]
    groups: dict[Hashable, list[T]] = {}
    for item in batch:
        groups.setdefault(partition_of(item), []).append(item)
    largest_first = sorted(groups.values(), key=len, reverse=True)
    for count in range(min(lanes, len(groups), len(batch) // max(min_events, 1)), 1, -1):
        parts: list[list[T]] = [[] for _ in range(count)]
        for group in largest_first:
            min(parts, key=len).extend(group)
        if min(len(p) for p in parts) >= min_events:  # else too uneven: try fewer lanes
            return parts
    return [list(batch)]
