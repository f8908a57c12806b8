"""``make kube-play`` / ``make kube-down``: the Kubernetes manifests run on this
machine with ``podman kube play`` (podman 4.3), from the podman overlay.

    python -m deploy.kubernetes.kube_play up|down|clean [--overlay podman|podman-dev]

``up`` renders the overlay (``deploy.kubernetes.render``) and plays it in the
order a cluster's init containers and Job would impose: PostgreSQL and RabbitMQ
until healthy, the migration Pod to completion, then the services until every
pod is healthy. Played again, the pods are replaced and the volumes kept.
Health is polled with ``podman healthcheck run`` (the pods' liveness probes;
without systemd podman runs none by itself). The Secret becomes a podman secret,
which podman 4.3 reads back for ``secretKeyRef`` (the Secret kind it writes
itself it cannot). The pods share the podman network ``nimbus-kube``; the
addresses of PostgreSQL and RabbitMQ reach the later pods as ``hostAliases``
(/etc/hosts), since podman's DNS (aardvark-dns) has been seen here to answer
nothing for 20 s at a time. ``down`` stops the services, then PostgreSQL and
RabbitMQ, with the pods' grace, and removes the pods, the network and the
secret; the volumes (the claims) stay. ``clean`` removes those too.

``CONTAINERS_CONF`` defaults to deploy/images/containers.conf, as for the images
and compose; ``KUBE_PLAY_TIMEOUT_S`` bounds each wait (default 180).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from deploy.kubernetes.render import HERE, OVERLAYS, render

NETWORK = "nimbus-kube"
INFRA = ("postgres", "rabbitmq")
"""The components played first (``app.kubernetes.io/component``)."""
PLAYED = ("ConfigMap", "PersistentVolumeClaim", "Deployment", "Pod")
"""The kinds kube play runs; the Secret is handled here, the rest are refused."""

Doc = dict[str, Any]


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


# -- what the rendered overlay holds


def component(doc: Doc) -> str:
    """The ``app.kubernetes.io/component`` label of a Pod or a Deployment's pods."""
    meta = doc["metadata"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]
    return meta.get("labels", {}).get("app.kubernetes.io/component", "")


def pod_names(doc: Doc) -> list[str]:
    """The pods kube play makes of a Deployment (``<name>-pod-<i>``) or a Pod."""
    name = doc["metadata"]["name"]
    if doc["kind"] == "Pod":
        return [name]
    return [f"{name}-pod-{i}" for i in range(doc["spec"].get("replicas", 1))]


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def containers(doc: Doc) -> list[str]:
    """The names podman gives the containers of ``doc``'s pods."""
    return [f"{pod}-{c['name']}" for pod in pod_names(doc) for c in pod_spec(doc)["containers"]]


def stages(docs: Sequence[Doc]) -> tuple[list[Doc], list[Doc], list[Doc]]:
    """(infrastructure, the migration Pod, the services); ValueError for a kind
    kube play does not run."""
    refused = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
               if d["kind"] not in (*PLAYED, "Secret")]
    if refused:
        raise ValueError(f"podman kube play runs none of: {', '.join(refused)}")
    runnable = [d for d in docs if d["kind"] in ("Deployment", "Pod")]
    infra = [d for d in runnable if d["kind"] == "Deployment" and component(d) in INFRA]
    migrate = [d for d in runnable if d["kind"] == "Pod"]
    services = [d for d in runnable if d not in infra and d not in migrate]
    return infra, migrate, services


def claims_of(docs: Iterable[Doc], all_docs: Sequence[Doc]) -> list[Doc]:
    """The PersistentVolumeClaims that ``docs`` mount."""
    wanted = {v["persistentVolumeClaim"]["claimName"] for d in docs
              for v in pod_spec(d).get("volumes", []) if "persistentVolumeClaim" in v}
    return [d for d in all_docs if d["kind"] == "PersistentVolumeClaim"
            and d["metadata"]["name"] in wanted]


def with_host_aliases(docs: Sequence[Doc], aliases: dict[str, str]) -> list[Doc]:
    """``docs`` whose pods also find each of ``aliases`` (hostname -> address) in
    /etc/hosts (copies: the rendered documents are left alone)."""
    out = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        pod_spec(doc).setdefault("hostAliases", []).extend(
            {"ip": ip, "hostnames": [name]} for name, ip in sorted(aliases.items()))
        out.append(doc)
    return out


def address_of(container: str) -> str:
    fmt = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % NETWORK
    return podman("inspect", "-f", fmt, container).stdout.strip()


def secret_payload(secret: Doc) -> bytes:
    """A Secret as podman 4.3 reads a podman secret for ``secretKeyRef``: a JSON
    object of base64 values."""
    data = dict(secret.get("data", {}))
    for key, value in secret.get("stringData", {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return json.dumps(data).encode()


def grace_of(docs: Iterable[Doc]) -> int:
    """The longest terminationGracePeriodSeconds: how long ``down`` lets pods stop
    (podman itself ignores the field and would kill after 10 s)."""
    return max((pod_spec(d).get("terminationGracePeriodSeconds", 30) for d in docs
                if d["kind"] in ("Deployment", "Pod")), default=30)


# -- running them


def play(docs: Sequence[Doc]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="nimbus-kube-") as fh:
        yaml.safe_dump_all(docs, fh, sort_keys=False)
        fh.flush()
        podman("kube", "play", "--network", NETWORK, fh.name)


def play_stage(stage: Sequence[Doc], docs: Sequence[Doc], configmaps: Sequence[Doc]) -> None:
    """Play ``stage`` with the ConfigMaps and the claims it mounts. A claim whose
    volume exists already holds data: kept, not played again."""
    new_claims = [c for c in claims_of(stage, docs)
                  if podman("volume", "exists", c["metadata"]["name"], check=False).returncode]
    play([*configmaps, *new_claims, *stage])


def wait_healthy(names: Sequence[str], timeout: float) -> None:
    """Run each container's health check until it passes; fail early when one stops."""
    deadline = time.monotonic() + timeout
    for name in names:
        while podman("healthcheck", "run", name, check=False).returncode != 0:
            state = podman("inspect", "-f", "{{.State.Status}}", name, check=False).stdout.strip()
            if state not in ("running", "created", "configured"):
                raise RuntimeError(f"{name} is {state or 'gone'}; its log:\n{tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not healthy after {timeout:.0f} s; its log:\n{tail(name)}")
            time.sleep(1)
        log(f"{name} healthy")


def tail(name: str, lines: int = 30) -> str:
    proc = podman("logs", "--tail", str(lines), name, check=False)
    return proc.stdout + proc.stderr


def up(docs: Sequence[Doc], timeout: float) -> None:
    infra, migrate, services = stages(docs)
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    if podman("image", "exists", "localhost/nimbus:latest", check=False).returncode != 0:
        raise RuntimeError("no image localhost/nimbus:latest: run `make images` first")
    # Played again: the pods are replaced (their volumes kept), as a new rollout
    # would; stopped our way, since kube play --replace stops whole pods, slowly.
    if any(podman("pod", "exists", p, check=False).returncode == 0
           for d in docs if d["kind"] in ("Deployment", "Pod") for p in pod_names(d)):
        log("replacing the running pods")
        down(docs, volumes=False)
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", NETWORK)
    for secret in (d for d in docs if d["kind"] == "Secret"):
        name = secret["metadata"]["name"]
        podman("secret", "rm", name, check=False)
        with tempfile.NamedTemporaryFile(prefix="nimbus-secret-") as fh:
            fh.write(secret_payload(secret))
            fh.flush()
            podman("secret", "create", name, fh.name)
    start = time.monotonic()
    log(f"playing PostgreSQL and RabbitMQ: {', '.join(p for d in infra for p in pod_names(d))}")
    play_stage(infra, docs, configmaps)
    wait_healthy([c for d in infra for c in containers(d)], timeout)
    aliases = {pod: address_of(f"{pod}-{c['name']}") for d in infra
               for pod in pod_names(d) for c in pod_spec(d)["containers"]}
    log(f"playing migrate+bootstrap: {', '.join(p for d in migrate for p in pod_names(d))}")
    play_stage(with_host_aliases(migrate, aliases), docs, configmaps)
    for name in (c for d in migrate for c in containers(d)):
        rc = podman("wait", name).stdout.strip()
        print(tail(name, 5), file=sys.stderr, end="")
        if rc != "0":
            raise RuntimeError(f"{name} failed (exit status {rc})")
    log(f"playing the services: {', '.join(p for d in services for p in pod_names(d))}")
    play_stage(with_host_aliases(services, aliases), docs, configmaps)
    wait_healthy([c for d in services for c in containers(d)], timeout)
    urls = next(d for d in configmaps if d["metadata"]["name"] == "nimbus-config")["data"]
    log(f"Nimbus is up in {time.monotonic() - start:.0f} s: identity "
        f"{urls['NIMBUS_IDENTITY_PUBLIC_URL']}/v3, compute {urls['NIMBUS_IDENTITY_COMPUTE_PUBLIC_URL']}")


def down(docs: Sequence[Doc], *, volumes: bool) -> None:
    """Stop the services, then PostgreSQL and RabbitMQ (whose clients are gone by
    then), each container with the pods' grace; then remove the pods. The
    containers are stopped, not the pods: a pod's infra container ignores SIGTERM
    and would hold ``podman pod stop`` for the whole grace."""
    infra, migrate, services = stages(docs)
    grace = str(grace_of(docs))
    stopped = 0
    for stage in (services, migrate, infra):
        running = [c for d in stage for c in containers(d)
                   if podman("container", "exists", c, check=False).returncode == 0]
        if running:
            began = time.monotonic()
            podman("stop", "-t", grace, *running, check=False)
            log(f"stopped {', '.join(running)} in {time.monotonic() - began:.1f} s")
            stopped += len(running)
    pods = [p for d in docs if d["kind"] in ("Deployment", "Pod") for p in pod_names(d)]
    present = [p for p in pods if podman("pod", "exists", p, check=False).returncode == 0]
    if present:
        podman("pod", "rm", "-f", *present, check=False)
    for secret in (d for d in docs if d["kind"] == "Secret"):
        podman("secret", "rm", secret["metadata"]["name"], check=False)
    podman("network", "rm", "-f", NETWORK, check=False)
    if volumes:
        for claim in (d for d in docs if d["kind"] == "PersistentVolumeClaim"):
            podman("volume", "rm", "-f", claim["metadata"]["name"], check=False)
    left = [p for p in pods if podman("pod", "exists", p, check=False).returncode == 0]
    log(f"stopped {stopped} container(s), removed {len(present)} pod(s); left: {len(left)}"
        f"{'; volumes removed' if volumes else ' (volumes kept)'}")
    if left:
        raise RuntimeError(f"pods left running: {', '.join(left)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.kube_play")
    parser.add_argument("command", choices=["up", "down", "clean"])
    parser.add_argument("--overlay", default=os.environ.get("KUBE_OVERLAY", "podman"),
                        choices=OVERLAYS)
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTAINERS_CONF", str(HERE.parent / "images" / "containers.conf"))
    timeout = float(os.environ.get("KUBE_PLAY_TIMEOUT_S", "180"))
    docs = render(args.overlay)
    try:
        if args.command == "up":
            up(docs, timeout)
        else:
            down(docs, volumes=args.command == "clean")
    except (RuntimeError, ValueError) as exc:
        print(f"kube-play {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
