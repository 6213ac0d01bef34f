"""Rate bands by local time and the split of an interval at band boundaries, across clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from carewatch.domain.bands import band_at, split_by_band

LONDON = ZoneInfo("Europe/London")


def test_band_precedence() -> None:
    assert band_at(datetime(2026, 4, 7, 12, 0)) == "day"  # Tuesday
    assert band_at(datetime(2026, 4, 7, 22, 0)) == "night"
    assert band_at(datetime(2026, 4, 7, 6, 59, 59)) == "night"
    assert band_at(datetime(2026, 4, 7, 7, 0)) == "day"
    assert band_at(datetime(2026, 4, 11, 12, 0)) == "weekend"  # Saturday
    assert band_at(datetime(2026, 4, 11, 23, 0)) == "weekend"  # a weekend night is weekend
    assert band_at(datetime(2026, 4, 6, 3, 0)) == "bank_holiday"  # Easter Monday night
    assert band_at(datetime(2026, 12, 26, 12, 0)) == "weekend"  # Boxing Day on a Saturday
    assert band_at(datetime(2026, 12, 28, 12, 0)) == "bank_holiday"  # its substitute


def test_weekday_night_splits_at_22_and_07_to_the_second() -> None:
    start = datetime(2026, 4, 14, 21, 59, 30, tzinfo=LONDON)  # Tuesday
    end = datetime(2026, 4, 15, 7, 0, 45, tzinfo=LONDON)
    assert split_by_band(start, end, LONDON) == {"day": 30 + 45, "night": 9 * 3600}


def test_split_at_midnight_into_a_bank_holiday() -> None:
    start = datetime(2026, 4, 5, 23, 0, tzinfo=LONDON)  # Easter Sunday 23:00
    end = datetime(2026, 4, 6, 1, 0, tzinfo=LONDON)
    assert split_by_band(start, end, LONDON) == {"weekend": 3600, "bank_holiday": 3600}


def test_sub_second_parts_are_truncated() -> None:
    start = datetime(2026, 4, 14, 10, 0, 0, 900_000, tzinfo=UTC)
    end = datetime(2026, 4, 14, 10, 0, 10, 100_000, tzinfo=UTC)
    assert split_by_band(start, end, LONDON) == {"day": 10}
    assert split_by_band(end, start, LONDON) == {}


def test_night_across_bst_start_is_nine_hours() -> None:
    # 28 Mar 2026 22:00 GMT to 29 Mar 08:00 BST: the clocks go forward at 01:00.
    start = datetime(2026, 3, 28, 22, 0, tzinfo=LONDON)
    end = datetime(2026, 3, 29, 8, 0, tzinfo=LONDON)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=9)
    assert split_by_band(start, end, LONDON) == {"weekend": 9 * 3600}  # Saturday night into Sunday


def test_night_across_bst_end_is_eleven_hours() -> None:
    start = datetime(2026, 10, 24, 22, 0, tzinfo=LONDON)
    end = datetime(2026, 10, 25, 8, 0, tzinfo=LONDON)
    assert split_by_band(start, end, LONDON) == {"weekend": 11 * 3600}


def test_weekday_nights_either_side_of_the_clock_changes() -> None:
    # The following Sunday-to-Monday night: the Sunday hours are weekend, Monday's night then day.
    start = datetime(2026, 3, 29, 22, 0, tzinfo=LONDON)
    end = datetime(2026, 3, 30, 8, 0, tzinfo=LONDON)
    assert split_by_band(start, end, LONDON) == {"weekend": 2 * 3600, "night": 7 * 3600, "day": 3600}
    start = datetime(2026, 10, 25, 22, 0, tzinfo=LONDON)
    end = datetime(2026, 10, 26, 8, 0, tzinfo=LONDON)
    assert split_by_band(start, end, LONDON) == {"weekend": 2 * 3600, "night": 7 * 3600, "day": 3600}


def test_weekday_clock_change_at_midnight() -> None:
    # Tehran moved its clocks at local midnight on weekdays (until 2022): the band walk must stop
    # at the change and read the wall clock again, on both sides.
    tehran = ZoneInfo("Asia/Tehran")
    # Sunday 21 Mar 2021 19:30 (+03:30) to Monday 22 Mar 09:30 (+04:30); midnight became 01:00.
    start = datetime(2021, 3, 21, 16, 0, tzinfo=UTC)
    end = datetime(2021, 3, 22, 5, 0, tzinfo=UTC)
    assert split_by_band(start, end, tehran) == {"weekend": 16200, "night": 6 * 3600, "day": 9000}
    # Tuesday 21 Sep 2021 20:30 (+04:30): at midnight the clocks went back to 23:00.
    start = datetime(2021, 9, 21, 16, 0, tzinfo=UTC)
    end = datetime(2021, 9, 22, 5, 0, tzinfo=UTC)
    assert split_by_band(start, end, tehran) == {"day": 3 * 3600, "night": 10 * 3600}


instants = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2031, 1, 1),
                        timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(start=instants, length=st.integers(min_value=0, max_value=3 * 86400))
def test_band_split_sums_to_the_whole_interval(start: datetime, length: int) -> None:
    end = start + timedelta(seconds=length)
    parts = split_by_band(start, end, LONDON)
    whole = int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds())
    assert sum(parts.values()) == whole
    assert all(v > 0 for v in parts.values())


@settings(max_examples=200, deadline=None)
@given(start=instants, first=st.integers(0, 86400), second=st.integers(0, 86400))
def test_band_split_is_additive(start: datetime, first: int, second: int) -> None:
    start = start.replace(microsecond=0)
    mid = start + timedelta(seconds=first)
    end = mid + timedelta(seconds=second)
    whole = split_by_band(start, end, LONDON)
    a, b = split_by_band(start, mid, LONDON), split_by_band(mid, end, LONDON)
    assert whole == {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


@settings(max_examples=200, deadline=None)
@given(start=instants, length=st.integers(min_value=1, max_value=2 * 86400))
def test_band_split_agrees_with_band_at_sampled_seconds(start: datetime, length: int) -> None:
    # Each second of the interval is in the band of its local wall time: check via a 1-second split.
    start = start.replace(microsecond=0)
    for offset in (0, length // 3, length // 2, length - 1):
        at = start + timedelta(seconds=offset)
        assert split_by_band(at, at + timedelta(seconds=1), LONDON) == {band_at(at.astimezone(LONDON)): 1}
