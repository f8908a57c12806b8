"""deploy/kubernetes: every kustomization renders and is valid against the
Kubernetes API's schemas (kubernetes-validate, offline), and what the manifests
promise holds: probes on the health ports, the shutdown grace inside the
termination grace, non-root pods, the podman overlay's stand-ins equal to what
they stand in for. Rendered by kustomize or kubectl where one is installed, else read
from the committed renders (deploy/kubernetes/rendered/), which the two tests that
need kustomize check are current."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil

import kubernetes_validate
import pytest

from deploy.kubernetes import kube_play
from deploy.kubernetes.render import (
    HERE,
    KUSTOMIZATIONS,
    have_kustomize,
    kustomize_command,
    render,
    stale,
)
from shared.config import ShutdownSettings

# Only rendering a kustomization anew needs kustomize (every machine image of this
# project's workplace has kubectl 1.32, CI's included; see render.py).
needs_kustomize = pytest.mark.skipif(not have_kustomize(), reason="no kustomize or kubectl here")
# The oldest release the manifests are written for (autoscaling/v2, policy/v1 and
# the rest are GA there) and the newest the pinned package knows.
K8S_VERSIONS = ("1.27", "1.37")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(name) for name in KUSTOMIZATIONS}


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def validate_all(docs) -> list[str]:
    """Every schema error of ``docs``, as ``Kind/name: message``."""
    errors = []
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{doc['kind']}/{doc['metadata']['name']} ({version}): {exc.message}")
    return errors


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_kustomization_is_valid_against_the_kubernetes_schemas(rendered, name):
    assert validate_all(rendered[name]) == []


def test_the_base_holds_what_a_cluster_needs(rendered):
    kinds = sorted({d["kind"] for d in rendered["base"]})
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "Namespace",
                     "PersistentVolumeClaim", "PodDisruptionBudget", "Secret", "Service",
                     "StatefulSet"]
    assert sorted(by_kind(rendered["base"], "StatefulSet")) == ["nimbus-postgres", "nimbus-rabbitmq"]
    hpa = by_kind(rendered["base"], "HorizontalPodAutoscaler")["nimbus-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "nimbus-api" and hpa["spec"]["minReplicas"] == 2
    pdb = by_kind(rendered["base"], "PodDisruptionBudget")["nimbus-api"]
    api = by_kind(rendered["base"], "Deployment")["nimbus-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= \
        api["spec"]["template"]["metadata"]["labels"].items()
    assert all(d["metadata"]["namespace"] == "nimbus" for d in rendered["base"] if d["kind"] != "Namespace")


@needs_kustomize
def test_the_committed_renders_are_what_kustomize_makes():
    assert stale() == [], "run: python -m deploy.kubernetes.render --write"


@needs_kustomize
def test_a_broken_kustomization_fails_validation(tmp_path):
    """A kustomization whose patch misspells a field, and one with a wrong type:
    rendered as the real ones are, both are refused."""
    overlay = tmp_path / "broken"
    overlay.mkdir()
    base = os.path.relpath(HERE / "base", overlay)  # kustomize takes no absolute path
    (overlay / "kustomization.yaml").write_text(f"""
resources: [{base}]
patches:
  - target: {{kind: Deployment, name: nimbus-api}}
    patch: |-
      - {{op: add, path: /spec/template/spec/containers/0/commnad, value: [python]}}
  - target: {{kind: Deployment, name: nimbus-scheduler}}
    patch: |-
      - {{op: replace, path: /spec/replicas, value: two}}
""")
    errors = validate_all(render(str(overlay)))
    assert any("nimbus-api" in e and "commnad" in e for e in errors), errors
    assert any("nimbus-scheduler" in e and "'two' is not of type 'integer'" in e for e in errors), errors


def test_a_broken_manifest_fails_validation(rendered):
    # The same for a single resource broken by hand: a quoted number.
    doc = copy.deepcopy(by_kind(rendered["base"], "Deployment")["nimbus-scheduler"])
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = "5"
    assert validate_all([doc]) == [
        f"Deployment/nimbus-scheduler ({v}): '5' is not of type 'integer', 'null'" for v in K8S_VERSIONS]


def nimbus_deployments(docs):
    return {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in docs if d["kind"] == "Deployment"
            and d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "nimbus"}


def env_value(container, name):
    [entry] = [e for e in container["env"] if e["name"] == name]
    return entry.get("value")


def test_probes_ask_each_service_its_own_health_port(rendered):
    deployments = nimbus_deployments(rendered["base"])
    assert sorted(deployments) == ["api", "compute-az1", "compute-az2", "compute-az3",
                                   "consoleproxy", "network", "scheduler", "volume"]
    for name, d in deployments.items():
        [c] = d["spec"]["template"]["spec"]["containers"]
        port = {"api": "NIMBUS_API_PORT", "consoleproxy": "NIMBUS_CONSOLEPROXY_PORT"}.get(
            name, "NIMBUS_HEALTH_PORT")
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": int(env_value(c, port))}, name
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == env_value(c, port), name


def test_replicas_two_of_each_replicated_service_and_one_per_agent(rendered):
    replicas = {n: d["spec"]["replicas"] for n, d in nimbus_deployments(rendered["base"]).items()}
    assert replicas == {"api": 2, "scheduler": 2, "network": 2, "volume": 2, "consoleproxy": 2,
                        "compute-az1": 1, "compute-az2": 1, "compute-az3": 1}
    for name in ("compute-az1", "compute-az2", "compute-az3"):
        assert nimbus_deployments(rendered["base"])[name]["spec"]["strategy"] == {"type": "Recreate"}


def test_the_termination_grace_outlasts_the_shutdown_grace(rendered):
    config = by_kind(rendered["base"], "ConfigMap")["nimbus-config"]["data"]
    grace = float(config["NIMBUS_SHUTDOWN_GRACE_S"])
    assert grace == ShutdownSettings().grace_s
    for name, d in nimbus_deployments(rendered["base"]).items():
        spec = d["spec"]["template"]["spec"]
        [c] = spec["containers"]
        pause = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        assert spec["terminationGracePeriodSeconds"] >= pause + grace + 5, name
        assert {"name": "NIMBUS_SHUTDOWN_GRACE_S", "valueFrom": {"configMapKeyRef": {
            "name": "nimbus-config", "key": "NIMBUS_SHUTDOWN_GRACE_S"}}} in c["env"], name


def test_every_pod_runs_as_a_user_not_root_with_requests_and_limits(rendered):
    for d in rendered["base"]:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = d["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] > 0, d["metadata"]["name"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert set(c["resources"]) == {"requests", "limits"}, (d["metadata"]["name"], c["name"])


def test_services_wait_for_the_migration_job(rendered):
    job = by_kind(rendered["base"], "Job")["nimbus-migrate"]
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert c["command"][-1] == ("python -m services.api.manage migrate && "
                                "python -m services.api.manage bootstrap")
    for name, d in nimbus_deployments(rendered["base"]).items():
        [init] = d["spec"]["template"]["spec"]["initContainers"]
        assert init["command"] == ["python", "-m", "deploy.kubernetes.wait_for_schema"], name


def test_the_podman_overlay_stands_in_faithfully(rendered):
    """Its PostgreSQL and RabbitMQ Deployments run the StatefulSets' pods, its
    migration Pod the Job's container; only what kube play cannot take differs."""
    base, podman = rendered["base"], rendered["podman"]
    statefulsets, deployments = by_kind(base, "StatefulSet"), by_kind(podman, "Deployment")
    for name in ("nimbus-postgres", "nimbus-rabbitmq"):
        want = copy.deepcopy(statefulsets[name]["spec"]["template"])
        got = copy.deepcopy(deployments[name]["spec"]["template"])
        for c in want["spec"]["containers"]:
            del c["ports"]  # kube play would publish them on the host
        got["spec"].pop("volumes")
        assert got == want, name
    [job_container] = by_kind(base, "Job")["nimbus-migrate"]["spec"]["template"]["spec"]["containers"]
    [pod_container] = by_kind(podman, "Pod")["nimbus-migrate-pod"]["spec"]["containers"]
    assert pod_container == job_container
    # The services: the base's, less init containers and unpublished ports.
    for name, d in nimbus_deployments(podman).items():
        spec = d["spec"]["template"]["spec"]
        assert "initContainers" not in spec, name
        [c] = spec["containers"]
        assert c["command"] == nimbus_deployments(base)[name]["spec"]["template"]["spec"][
            "containers"][0]["command"]
        assert all("hostPort" in p for p in c.get("ports", [])), name
    secret = by_kind(podman, "Secret")["nimbus-secrets"]["stringData"]
    assert "@nimbus-postgres-pod-0:5432/" in secret["NIMBUS_DATABASE_URL"]
    assert "@nimbus-rabbitmq-pod-0:5672/" in secret["NIMBUS_AMQP_URL"]


@pytest.mark.parametrize(("overlay", "offset"), [("podman", 0), ("podman-dev", 10000)])
def test_published_ports_and_the_catalog_urls_agree(rendered, overlay, offset):
    """What kube play publishes is what the catalog advertises: CONTRACT.md's
    ports, or those ports plus the dev overlay's offset."""
    docs = rendered[overlay]
    config = by_kind(docs, "ConfigMap")["nimbus-config"]["data"]
    published = {p["containerPort"]: p["hostPort"] for d in nimbus_deployments(docs).values()
                 for p in d["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
    contract = {5000: "NIMBUS_IDENTITY_PUBLIC_URL", 8774: "NIMBUS_IDENTITY_COMPUTE_PUBLIC_URL",
                9292: "NIMBUS_IDENTITY_IMAGE_PUBLIC_URL", 9696: "NIMBUS_IDENTITY_NETWORK_PUBLIC_URL",
                8776: "NIMBUS_IDENTITY_BLOCK_STORAGE_PUBLIC_URL", 6080: "NIMBUS_CONSOLEPROXY_PUBLIC_URL"}
    assert published == {port: port + offset for port in contract}
    for port, key in contract.items():
        assert config[key] == f"http://127.0.0.1:{port + offset}"


# -- make kube-play's plan (deploy/kubernetes/kube_play.py)


def test_kube_play_orders_infrastructure_migration_then_services(rendered):
    infra, migrate, services = kube_play.stages(rendered["podman"])
    assert [d["metadata"]["name"] for d in infra] == ["nimbus-postgres", "nimbus-rabbitmq"]
    assert [kube_play.pod_names(d) for d in migrate] == [["nimbus-migrate-pod"]]
    names = [c for d in services for c in kube_play.containers(d)]
    assert "nimbus-scheduler-pod-1-nimbus" in names and "nimbus-api-pod-0-nimbus" in names
    assert len(names) == 11  # api, consoleproxy, 3 agents, 2 x scheduler, network, volume
    claims = [c["metadata"]["name"] for c in kube_play.claims_of(infra, rendered["podman"])]
    assert claims == ["nimbus-pgdata", "nimbus-rabbitmq"]
    assert kube_play.grace_of(rendered["podman"]) == 40


def test_kube_play_refuses_what_podman_cannot_run(rendered):
    with pytest.raises(ValueError, match="StatefulSet/nimbus-postgres") as caught:
        kube_play.stages(rendered["base"])
    assert "Job/nimbus-migrate" in str(caught.value)
    assert "HorizontalPodAutoscaler/nimbus-api" in str(caught.value)


def test_the_secret_becomes_json_of_base64_values():
    payload = kube_play.secret_payload({"stringData": {"A": "p@ss:1"}, "data": {"B": "eA=="}})
    assert {k: base64.b64decode(v).decode() for k, v in json.loads(payload).items()} == {
        "A": "p@ss:1", "B": "x"}


@needs_kustomize
def test_render_names_the_kustomize_it_uses():
    command = kustomize_command()
    assert command in (["kustomize", "build"], ["kubectl", "kustomize"])
    assert shutil.which(command[0])


def test_later_pods_find_postgres_and_rabbitmq_in_their_hosts_file(rendered):
    _, migrate, services = kube_play.stages(rendered["podman"])
    aliases = {"nimbus-postgres-pod-0": "10.89.0.2", "nimbus-rabbitmq-pod-0": "10.89.0.3"}
    changed = kube_play.with_host_aliases([*migrate, *services], aliases)
    for doc in changed:
        assert kube_play.pod_spec(doc)["hostAliases"] == [
            {"ip": "10.89.0.2", "hostnames": ["nimbus-postgres-pod-0"]},
            {"ip": "10.89.0.3", "hostnames": ["nimbus-rabbitmq-pod-0"]}]
    assert all("hostAliases" not in kube_play.pod_spec(d) for d in [*migrate, *services])
