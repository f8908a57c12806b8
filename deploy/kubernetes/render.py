"""Render a kustomization of deploy/kubernetes (``base`` or an overlay) to its
resources, with the kustomize built into kubectl or a stand-alone ``kustomize``.

Where kustomize comes from: a stand-alone ``kustomize`` on PATH if there is one,
else ``kubectl kustomize`` (kubectl 1.14+; kustomize v5 since kubectl 1.27). Every
machine image of this project's workplace carries kubectl 1.32 (kustomize 5.5),
CI's included; Debian's own kubectl (kubernetes-client, 1.20, kustomize 2.0) is
too old for these files; on PyPI, "kustomize" is an unrelated Python
tool and pykustomize needs Python 3.14.
Elsewhere, install kubectl or kustomize from the Kubernetes project.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OVERLAYS = ("podman", "podman-dev")


class NoKustomize(RuntimeError):
    """Neither kustomize nor kubectl is installed."""


def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise NoKustomize("rendering deploy/kubernetes needs kustomize or kubectl (1.27+) on PATH")


def path_of(name: str) -> Path:
    """``base`` or an overlay's name -> its directory; any other path as it is."""
    if name == "base":
        return HERE / "base"
    if name in OVERLAYS:
        return HERE / "overlays" / name
    return Path(name)


@functools.lru_cache(maxsize=16)
def render_text(name: str) -> str:
    """The rendered YAML (cached: the files do not change under a running process)."""
    proc = subprocess.run([*kustomize_command(), str(path_of(name))], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize {name} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def render(name: str) -> list[dict[str, Any]]:
    """The resources of kustomization ``name``, in kustomize's order (parsed anew on
    every call, so a caller may change them)."""
    return [doc for doc in yaml.safe_load_all(render_text(name)) if doc]
