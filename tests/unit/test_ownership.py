"""Ownership of packages and shifts (domain/ownership.py, DOMAIN.md "Ownership and plausible input")."""

from __future__ import annotations

from datetime import UTC, datetime

from carewatch.domain.ownership import Owners, PackageOwner, ShiftOwner

T = datetime(2026, 4, 6, 8, tzinfo=UTC)


def owners() -> Owners:
    return Owners({"PKG-A": PackageOwner("PRV-A", T)}, {"SH-A": ShiftOwner("PKG-A", "PRV-A")})


def shift(shift_id: str, package_id: str, provider_id: str) -> dict[str, str]:
    return {"shift_id": shift_id, "package_id": package_id, "provider_id": provider_id}


def test_another_providers_shift_on_a_package_is_refused() -> None:
    problem = owners().judge("shift.scheduled", shift("SH-B", "PKG-A", "PRV-B"), T)
    assert problem is not None and "'PRV-B' is not the provider of package 'PKG-A'" in problem


def test_a_shift_belongs_to_its_first_announcement_for_good() -> None:
    o = owners()
    o.packages["PKG-B"] = PackageOwner("PRV-B", T)
    problem = o.judge("shift.updated", shift("SH-A", "PKG-B", "PRV-B"), T)
    assert problem is not None and "belongs to package 'PKG-A'" in problem
    assert o.judge("shift.scheduled", shift("SH-NEW", "PKG-B", "PRV-B"), T) is None
    assert o.shifts["SH-NEW"] == ShiftOwner("PKG-B", "PRV-B", T)
    assert o.judge("shift.updated", shift("SH-NEW", "PKG-A", "PRV-A"), T) is not None


def test_attendance_invoices_and_activities_must_be_the_packages_providers() -> None:
    o = owners()
    clock = shift("SH-A", "PKG-A", "PRV-B") | {"carer_id": "CR-1"}
    assert o.judge("visit.clock_in", clock, T) is not None
    assert o.judge("visit.clock_in", shift("SH-A", "PKG-A", "PRV-A"), T) is None
    assert o.judge("invoice.submitted", {"package_id": "PKG-A", "provider_id": "PRV-B"}, T) is not None
    assert o.judge("activity.logged", {"package_id": "PKG-A", "provider_id": "PRV-B"}, T) is not None
    assert o.judge("activity.logged", {"provider_id": "PRV-B"}, T) is None  # no package named


def test_the_latest_approval_decides_a_packages_provider() -> None:
    o = owners()
    later = datetime(2026, 4, 7, tzinfo=UTC)
    assert o.judge("package.approved", {"package_id": "PKG-A", "provider_id": "PRV-B"}, later) is None
    assert o.packages["PKG-A"].provider_id == "PRV-B"
    # An older approval arriving late does not take it back.
    assert o.judge("package.approved", {"package_id": "PKG-A", "provider_id": "PRV-A"}, T) is None
    assert o.packages["PKG-A"].provider_id == "PRV-B"


def test_an_unknown_package_is_not_a_scope_problem() -> None:
    assert owners().judge("shift.scheduled", shift("SH-X", "PKG-X", "PRV-X"), T) is None


def test_an_earlier_announcement_arriving_later_takes_the_shift_over() -> None:
    o = Owners({"PKG-A": PackageOwner("PRV-A", T), "PKG-B": PackageOwner("PRV-B", T)})
    later, earlier = datetime(2026, 4, 6, 9, 30, tzinfo=UTC), datetime(2026, 4, 6, 9, tzinfo=UTC)
    assert o.judge("shift.scheduled", shift("SH-1", "PKG-B", "PRV-B"), later, "b-1") is None  # arrives first
    assert o.judge("shift.scheduled", shift("SH-1", "PKG-A", "PRV-A"), earlier, "a-1") is None  # first by time
    [takeover] = o.takeovers
    assert (takeover.shift_id, takeover.previous.package_id, takeover.owner.package_id) == ("SH-1", "PKG-B", "PKG-A")
    assert o.shifts["SH-1"].owns("PKG-A", "PRV-A")
    # From now on the other package is refused, whatever it sends, even an update later still.
    assert o.judge("shift.updated", shift("SH-1", "PKG-B", "PRV-B"), later, "b-2") is not None
    assert o.judge("visit.clock_in", shift("SH-1", "PKG-B", "PRV-B"), later, "b-3") is not None


def test_a_tie_on_time_goes_to_the_smaller_event_id() -> None:
    o = Owners({"PKG-A": PackageOwner("PRV-A", T), "PKG-B": PackageOwner("PRV-B", T)})
    assert o.judge("shift.scheduled", shift("SH-1", "PKG-B", "PRV-B"), T, "e-2") is None
    assert o.judge("shift.scheduled", shift("SH-1", "PKG-A", "PRV-A"), T, "e-1") is None
    assert o.shifts["SH-1"].owns("PKG-A", "PRV-A") and len(o.takeovers) == 1
