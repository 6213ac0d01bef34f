"""The bus owns the alert's one wire form; the Redis prefix is a setting."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from carewatch.alerts.bus import Channels, from_wire, to_wire
from carewatch.alerts.record import AlertChange, AlertRecord
from carewatch.settings import Settings

NOW = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)


def test_an_alert_crosses_the_wire_unchanged() -> None:
    alert = AlertRecord(7, "LATE_START", "warning", "auto_resolved", "shift", "SH-1", NOW, NOW, NOW, "late",
                        "PKG-1", "SH-1", None, "PRV-A", "LA-1", True, {"minutes": 17},
                        (AlertChange("open", NOW, "carewatch", "raised: late"),
                         AlertChange("auto_resolved", NOW, "carewatch", None)))
    message = json.loads(json.dumps(to_wire(alert)))
    assert message["raised_at"] == "2026-04-06T08:00:00+00:00"
    assert from_wire(message) == alert


def test_the_channel_prefix_is_the_setting_else_the_database_name() -> None:
    assert Settings(redis_prefix="team-a").channel_prefix == "team-a"
    assert Settings(database_url="postgresql://postgres@127.0.0.1:5432/cw_demo").channel_prefix == "carewatch:cw_demo"
    assert Settings(database_url="host=127.0.0.1 dbname=cw2 user=postgres").channel_prefix == "carewatch:cw2"
    assert Channels.for_settings(Settings(redis_prefix="p")).alerts == "p:alerts"
