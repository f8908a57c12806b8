"""deploy/prometheus: the scrape config matches `make up`'s ports and the alert rules
name families that exist.

promtool is not available here, so the files are checked as YAML (msgspec.yaml,
which needs PyYAML: openstacksdk in the test extras brings it) and against the
registry, not by Prometheus itself; the PromQL of the rules is not parsed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

# Imported for their families, which the rules are checked against.
import shared.metrics
import shared.metrics_sources  # noqa: F401
from deploy.local.services import default_services

pytest.importorskip("yaml")
import msgspec.yaml

HERE = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def _load(name: str) -> dict:
    return msgspec.yaml.decode((HERE / name).read_bytes())


def test_the_scrape_config_covers_every_port_make_up_serves_metrics_on():
    config = _load("prometheus.yml")
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    # Every process's own health port serves its /metrics; the file is written for
    # the two API processes `make up` starts on a 2-core machine.
    specs = default_services({}, replicas={"api": 2})
    assert targets == {s.health_url.removeprefix("http://").removesuffix("/healthz")
                       for s in specs}
    assert all(job["job_name"].startswith("nimbus-") for job in config["scrape_configs"])
    assert [(HERE / f).is_file() for f in config["rule_files"]] == [True]


def _known_samples() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_the_alerts_cover_stuck_builds_dead_hosts_and_5xx_with_known_families():
    rules = [r for group in _load("alerts.yml")["groups"] for r in group["rules"]]
    names = {r["alert"] for r in rules}
    assert {"NimbusBuildStuck", "NimbusComputeHostDown", "NimbusApi5xxRate"} <= names
    known = _known_samples()
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used = set(re.findall(r"\bnimbus_\w+", rule["expr"]))
        assert used <= known, (rule["alert"], used - known)
    assert "nimbus_servers_oldest_seconds" in known
