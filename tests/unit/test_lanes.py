"""stream/lanes.split_by_partition: a batch in lanes of whole partitions, each partition's order kept."""

from __future__ import annotations

from carewatch.stream.lanes import split_by_partition


def _batch(sizes: dict[int, int]) -> list[tuple[int, int]]:
    """(partition, offset) items, interleaved across partitions as a fetch would deliver them."""
    items = [(p, o) for p, n in sizes.items() for o in range(n)]
    return sorted(items, key=lambda item: (item[1], item[0]))


def _partition(item: tuple[int, int]) -> int:
    return item[0]


def test_each_partition_goes_whole_and_in_order_to_one_lane() -> None:
    batch = _batch({0: 700, 1: 650, 2: 600, 3: 550})
    parts = split_by_partition(batch, 2, _partition, min_events=100)
    assert len(parts) == 2
    assert sorted(item for part in parts for item in part) == sorted(batch)  # nothing lost or doubled
    lanes_of = {p: {i for i, part in enumerate(parts) if any(item[0] == p for item in part)} for p in range(4)}
    assert all(len(lanes) == 1 for lanes in lanes_of.values()), lanes_of
    for part in parts:
        for p in {item[0] for item in part}:
            offsets = [o for q, o in part if q == p]
            assert offsets == sorted(offsets)
    # Dealt largest first to the smaller lane: 700 + 550 and 650 + 600.
    assert sorted(len(part) for part in parts) == [1250, 1250]


def test_a_small_batch_or_one_partition_stays_whole() -> None:
    small = _batch({0: 30, 1: 30})
    assert split_by_partition(small, 2, _partition, min_events=100) == [small]
    single = _batch({3: 5000})
    assert split_by_partition(single, 2, _partition, min_events=100) == [single]
    assert split_by_partition(_batch({0: 900, 1: 900}), 1, _partition, min_events=100) == [_batch({0: 900, 1: 900})]


def test_a_lane_that_would_be_too_small_keeps_the_batch_whole() -> None:
    lopsided = _batch({0: 3000, 1: 40})
    assert split_by_partition(lopsided, 2, _partition, min_events=100) == [lopsided]


def test_fewer_lanes_when_the_batch_is_too_small_for_all_of_them() -> None:
    batch = _batch({0: 400, 1: 400, 2: 400, 3: 400})
    parts = split_by_partition(batch, 4, _partition, min_events=500)
    assert sorted(len(p) for p in parts) == [800, 800]  # three lanes would leave two with 400
    assert sorted(item for part in parts for item in part) == sorted(batch)
    assert len(split_by_partition(_batch({0: 2000, 1: 2000, 2: 2000, 3: 2000}), 4, _partition, min_events=500)) == 4


def test_never_more_parts_than_partitions_or_lanes() -> None:
    batch = _batch({0: 500, 1: 500, 2: 500})
    assert len(split_by_partition(batch, 4, _partition, min_events=100)) == 3
    assert len(split_by_partition(batch, 2, _partition, min_events=100)) == 2


def test_registrations_of_commissioners_and_providers_are_recognised() -> None:
    from carewatch.stream.lanes import registers_references

    assert registers_references(b'{"type": "provider.registered", "provider_id": "PRV-1"}')
    assert registers_references(b'{"type":"commissioner.registered"}')
    assert not registers_references(b'{"type": "carer.registered", "provider_id": "PRV-1"}')
    assert not registers_references(b'{"type": "visit.clock_in"}') and not registers_references(None)


def test_the_worker_pool_has_a_connection_for_every_lane_and_the_held_sweep() -> None:
    from carewatch.settings import Settings
    from carewatch.stream.lifespan import WorkerResources

    assert WorkerResources.for_settings(Settings()).pool.max_size == 6  # four lanes by default
    assert WorkerResources.for_settings(Settings(worker_lanes=2)).pool.max_size == 4
    assert WorkerResources.for_settings(Settings(worker_lanes=6)).pool.max_size == 8
