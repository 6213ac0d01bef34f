"""docker-compose.yml, read as data: no Docker engine runs here, so check what it would start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CAREWATCH = {"migrate": ["migrate"], "worker": ["worker"], "scheduler": ["scheduler"],
             "api": ["api", "--host", "0.0.0.0", "--port", "8000"]}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(compose["services"])


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert set(services) == {"timescaledb", "kafka", "redis", "prometheus", "grafana", *CAREWATCH}


def test_backing_services_are_pinned_and_health_checked(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"timescale/timescaledb:[0-9.]+-pg1[7-9]", services["timescaledb"]["image"])
    assert re.fullmatch(r"apache/kafka:[0-9]+\.[0-9]+\.[0-9]+", services["kafka"]["image"])
    assert re.fullmatch(r"redis:7(\.[0-9]+)*", services["redis"]["image"])
    for name in ("timescaledb", "kafka", "redis"):
        assert services[name]["healthcheck"]["test"], name
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_carewatch_services_use_the_one_image_and_their_command(services: dict[str, Any]) -> None:
    for name, command in CAREWATCH.items():
        service = services[name]
        assert service["build"]["dockerfile"] == "ops/Dockerfile", name
        assert service["build"]["context"] == ".", name
        assert service["command"] == command, name
        env = service["environment"]
        assert env["CAREWATCH_KAFKA_URL"] == "kafka://kafka:9092"
        assert env["CAREWATCH_DATABASE_URL"].endswith("@timescaledb:5432/carewatch")
        assert env["CAREWATCH_REDIS_URL"] == "redis://redis:6379/0"
    assert "8000:8000" in services["api"]["ports"]
    assert services["migrate"]["restart"] == "no"


def test_start_order_waits_for_health_and_migrations(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name in ("worker", "api", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_prometheus_scrapes_the_api_metrics(services: dict[str, Any]) -> None:
    assert any(v.startswith("./ops/prometheus.yml:") for v in services["prometheus"]["volumes"])
    config = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["carewatch-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"][0]["targets"] == ["api:8000"]


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    text = (ROOT / "ops" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'ENTRYPOINT ["carewatch"]' in text


def test_console_script_named_by_the_entrypoint_exists() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'carewatch = "carewatch.cli:main"' in pyproject


def test_prometheus_can_reach_the_worker_and_scheduler_metrics(services: dict[str, Any]) -> None:
    """Bound to 0.0.0.0 in their containers (the default, 127.0.0.1, is unreachable from Prometheus)."""
    config = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    worker, scheduler = services["worker"]["environment"], services["scheduler"]["environment"]
    assert worker["CAREWATCH_METRICS_HOST"] == "0.0.0.0" and scheduler["CAREWATCH_METRICS_HOST"] == "0.0.0.0"
    assert targets["carewatch-worker"] == [f"worker:{worker['CAREWATCH_WORKER_METRICS_PORT']}"]
    assert targets["carewatch-scheduler"] == [f"scheduler:{scheduler['CAREWATCH_SCHEDULER_METRICS_PORT']}"]
    assert scheduler["CAREWATCH_DATABASE_URL"].endswith("@timescaledb:5432/carewatch")  # the shared env too
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert all(services[name]["environment"]["CAREWATCH_LOG_FORMAT"] == "json" for name in CAREWATCH)


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(services: dict[str, Any]) -> None:
    import json

    grafana = services["grafana"]
    assert re.fullmatch(r"grafana/grafana:[0-9]+\.[0-9]+\.[0-9]+", grafana["image"])
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"] if v.startswith("./")}
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert "3000:3000" in grafana["ports"]
    assert grafana["environment"]["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"  # nothing fetched at run time
    provisioning = ROOT / "ops" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "carewatch.yml").read_text())["providers"][0]
    dashboards = mounts["./ops/grafana/dashboards"]
    assert provider["options"]["path"] == dashboards
    dashboard = json.loads((ROOT / "ops" / "grafana" / "dashboards" / "carewatch.json").read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for wanted in ("events applied per second, by type", "rejections per second, by stage", "batch time",
                   "consumer lag", "alerts raised, by kind", "event-to-alert latency", "subscribers",
                   "api latency", "api errors", "sweeps"):
        assert wanted in titles, wanted
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"] and panel["targets"], panel["title"]


def test_the_database_has_room_for_the_workers_carer_locks(services: dict[str, Any]) -> None:
    command = services["timescaledb"]["command"]
    assert command[0] == "postgres" and "max_locks_per_transaction=256" in command
