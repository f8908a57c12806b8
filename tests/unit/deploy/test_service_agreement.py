"""One list of services, three ways to run it: the process supervisor
(``deploy.local.supervisor.default_services``, `make up`), compose
(deploy/compose/compose.yaml) and Kubernetes (deploy/kubernetes/base). They are
written by hand, each in its own tool's terms, and this test keeps them from
drifting apart: the same services, each running the same module, given the same
settings with the same values, wherever the three forms can agree.

Where they legitimately differ, the difference is named here once:
- listening addresses (``NIMBUS_*_HOST``): the supervisor binds 127.0.0.1, the
  image sets 0.0.0.0 for every container (its ENV, read from the Containerfile);
- workers' health ports: the supervisor's processes share one host, so each has
  its own (8781...); every container has its own network, so all use 8790;
- the libvirt driver's VNC port ranges: only the supervisor runs that driver
  (the images carry the fake hypervisor);
- settings every container shares (database, broker, log level, shutdown
  grace) come from compose's common block and Kubernetes' Secret and ConfigMap,
  the supervisor's from the run's environment;
- replicas: compose writes a second copy as a service ``<name>-2`` (which must
  equal ``<name>``), Kubernetes says ``replicas``, the supervisor ``replicas=``;
- a compose ``gateway``, if there is one, balances the published ports over the
  replicas: Kubernetes' Services (and the supervisor's SO_REUSEPORT) do that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy.kubernetes.render import render
from deploy.local.supervisor import ServicePorts, default_services

ROOT = Path(__file__).resolve().parents[3]
INFRA_SERVICES = {"postgres", "rabbitmq", "migrate", "gateway"}
SHARED = {"NIMBUS_DATABASE_URL", "NIMBUS_AMQP_URL", "NIMBUS_LOG_LEVEL", "NIMBUS_SHUTDOWN_GRACE_S"}
SUPERVISOR_ONLY = {"NIMBUS_LIBVIRT_VNC_PORT_MIN", "NIMBUS_LIBVIRT_VNC_PORT_MAX"}
PER_HOST = {"NIMBUS_HEALTH_PORT"}
"""Values the supervisor's processes must choose apart, the containers alike."""
STORE = "/var/lib/nimbus/store"


@dataclass(frozen=True)
class Service:
    module: str
    env: dict[str, str]
    mounts: frozenset[str] = frozenset()


def module_of(argv) -> str:
    argv = list(argv)
    return argv[argv.index("-m") + 1]


def image_env() -> set[str]:
    """The variables the nimbus image's ENV sets."""
    text = (ROOT / "deploy/images/nimbus.Containerfile").read_text()
    block = re.search(r"^ENV (.*?)(?<!\\)\n", text, re.M | re.S).group(1)
    return set(re.findall(r"(\w+)=", block))


def from_supervisor() -> dict[str, Service]:
    return {s.name: Service(module_of(s.argv), dict(s.env_extra))
            for s in default_services(ports=ServicePorts())}


def compose_file() -> dict:
    return yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text())


def replica_of(name: str, services) -> str | None:
    """``api`` for a compose service ``api-2`` that copies ``api``; else None."""
    base, _, number = name.rpartition("-")
    return base if number.isdigit() and base in services else None


def from_compose() -> dict[str, Service]:
    out = {}
    services = compose_file()["services"]
    for name, svc in services.items():
        if name in INFRA_SERVICES or replica_of(name, services):
            continue
        mounts = frozenset(v.split(":")[1] for v in svc.get("volumes", []))
        out[name] = Service(module_of(svc["command"]), {k: str(v) for k, v in svc["environment"].items()},
                            mounts)
    return out


def from_kubernetes() -> dict[str, Service]:
    docs = render("base")
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    out = {}
    for d in docs:
        if d["kind"] != "Deployment" or d["metadata"]["labels"].get("app.kubernetes.io/name") != "nimbus":
            continue
        [c] = d["spec"]["template"]["spec"]["containers"]
        env = {}
        for e in c["env"]:
            ref = e.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                env[e["name"]] = config[ref["configMapKeyRef"]["key"]]
            elif "secretKeyRef" in ref:
                env[e["name"]] = f"<secret {ref['secretKeyRef']['key']}>"
            else:
                env[e["name"]] = e["value"]
        name = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        out[name] = Service(module_of(c["command"]), env,
                            frozenset(m["mountPath"] for m in c.get("volumeMounts", [])))
    return out


@pytest.fixture(scope="module")
def forms() -> tuple[dict[str, Service], dict[str, Service], dict[str, Service]]:
    # Rendered by kustomize, or read from the committed renders where there is none.
    return from_supervisor(), from_compose(), from_kubernetes()


def test_the_same_services_run_the_same_modules(forms):
    supervisor, compose, kubernetes = forms
    assert list(supervisor) == ["api", "scheduler", "network", "volume", "consoleproxy",
                                "compute-az1", "compute-az2", "compute-az3"]
    assert sorted(compose) == sorted(supervisor) == sorted(kubernetes)
    for name, svc in supervisor.items():
        assert svc.module == compose[name].module == kubernetes[name].module, name


def test_compose_replicas_are_copies():
    services = compose_file()["services"]
    for name, svc in services.items():
        if base := replica_of(name, services):
            copy = {k: v for k, v in svc.items() if k != "container_name"}
            assert copy == {k: v for k, v in services[base].items() if k != "container_name"}, name


def test_each_service_is_given_the_same_settings(forms):
    supervisor, compose, kubernetes = forms
    from_image = {k for k in image_env() if k.endswith("_HOST")}
    assert from_image == {"NIMBUS_API_HOST", "NIMBUS_IDENTITY_HOST", "NIMBUS_CONSOLEPROXY_HOST",
                          "NIMBUS_HEALTH_HOST"}
    for name, svc in supervisor.items():
        own = set(svc.env) - from_image - SUPERVISOR_ONLY
        assert set(compose[name].env) - SHARED == own, name
        assert set(kubernetes[name].env) - SHARED == own, name
        # What compose gives every container, Kubernetes gives too.
        assert set(compose[name].env) & SHARED <= set(kubernetes[name].env), name


def test_the_settings_have_the_same_values(forms):
    supervisor, compose, kubernetes = forms
    for name, svc in supervisor.items():
        for key in set(compose[name].env) - SHARED:
            assert compose[name].env[key] == kubernetes[name].env[key], (name, key)
            if key not in PER_HOST:
                # Ports of CONTRACT.md, public URLs, compute host names and zones.
                assert compose[name].env[key] == svc.env[key], (name, key)
    # Every container's health port is one and the same: the images' default.
    ports = {s.env["NIMBUS_HEALTH_PORT"] for f in (compose, kubernetes) for s in f.values()
             if "NIMBUS_HEALTH_PORT" in s.env}
    assert ports == {"8790"}


def test_the_same_services_share_the_image_and_volume_stores(forms):
    _, compose, kubernetes = forms
    for name in compose:
        assert (STORE in compose[name].mounts) == (STORE in kubernetes[name].mounts), name
        assert compose[name].mounts == kubernetes[name].mounts, name
    assert {n for n, s in compose.items() if STORE in s.mounts} == {
        "api", "volume", "compute-az1", "compute-az2", "compute-az3"}


def test_the_migration_is_the_same_command():
    compose = compose_file()["services"]["migrate"]["command"]
    job = next(d for d in render("base") if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == compose
