"""Render a kustomization of deploy/kubernetes (``base`` or an overlay) to its
resources, with the kustomize built into kubectl or a stand-alone ``kustomize``.

Where kustomize comes from: a stand-alone ``kustomize`` on PATH if there is one,
else ``kubectl kustomize`` (kubectl 1.14+; kustomize v5 since kubectl 1.27). Every
machine image of this project's workplace carries kubectl 1.32 (kustomize 5.5),
CI's included; Debian's own kubectl (kubernetes-client, 1.20, kustomize 2.0) is
too old for these files; on PyPI, "kustomize" is an unrelated Python
tool and pykustomize needs Python 3.14.
Elsewhere, install kubectl or kustomize from the Kubernetes project.

So that nothing else depends on having one, the renders of ``base`` and of each
overlay are committed under ``rendered/`` (``python -m deploy.kubernetes.render
--write`` after changing a kustomization; ``make test`` checks they are current
wherever kustomize is). ``render`` reads them where no kustomize is installed, so
the schema validation and ``make kube-play`` work on any machine.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import subprocess
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OVERLAYS = ("podman", "podman-dev")
KUSTOMIZATIONS = ("base", *OVERLAYS)
RENDERED = HERE / "rendered"
"""The committed renders, ``<kustomization>.yaml``."""


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


def have_kustomize() -> bool:
    try:
        kustomize_command()
    except NoKustomize:
        return False
    return True


@functools.lru_cache(maxsize=16)
def render_text(name: str) -> str:
    """The rendered YAML (cached: the files do not change under a running process):
    by kustomize, or for one of ours where there is none, the committed render."""
    if name in KUSTOMIZATIONS and not have_kustomize():
        return (RENDERED / f"{name}.yaml").read_text()
    return kustomize(name)


def kustomize(name: str) -> str:
    """``name`` rendered by kustomize now (NoKustomize where there is none)."""
    proc = subprocess.run([*kustomize_command(), str(path_of(name))], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize {name} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def render(name: str) -> list[dict[str, Any]]:
    """The resources of kustomization ``name``, in kustomize's order (parsed anew on
    every call, so a caller may change them)."""
    return [doc for doc in yaml.safe_load_all(render_text(name)) if doc]


def stale() -> list[str]:
    """The committed renders that differ from what kustomize makes now."""
    return [n for n in KUSTOMIZATIONS
            if (RENDERED / f"{n}.yaml").read_text() != kustomize(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.render")
    parser.add_argument("--write", action="store_true",
                        help="write rendered/<kustomization>.yaml (else: say which are stale)")
    args = parser.parse_args(argv)
    if args.write:
        RENDERED.mkdir(exist_ok=True)
        for name in KUSTOMIZATIONS:
            (RENDERED / f"{name}.yaml").write_text(kustomize(name))
        print(f"wrote {', '.join(KUSTOMIZATIONS)} under {RENDERED}")
        return 0
    old = stale()
    print(f"stale: {', '.join(old)}" if old else "rendered/ is current")
    return 1 if old else 0


if __name__ == "__main__":
    sys.exit(main())
