"""The image's HEALTHCHECK: ``GET /healthz`` of the service this container runs.

An image has one HEALTHCHECK but runs six services, so the check reads PID 1's
command line (``python -m services.<name>``) to find its port: the API's own port
(``NIMBUS_API_PORT``), the console proxy's (``NIMBUS_CONSOLEPROXY_PORT``), else a
worker's ``NIMBUS_HEALTH_PORT``. Standard library only; exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping


def service_of(cmdline: bytes) -> str:
    """``api`` from ``python\\0-m\\0services.api\\0``; empty when no ``-m``."""
    argv = cmdline.decode().split("\0")
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m":
            return argv[i + 1].removeprefix("services.")
    return ""


def port_of(service: str, environ: Mapping[str, str]) -> int:
    """The port serving the service's ``/healthz``; 0 when it has none."""
    if service == "api":
        return int(environ.get("NIMBUS_API_PORT", "8774"))
    if service == "consoleproxy":
        return int(environ.get("NIMBUS_CONSOLEPROXY_PORT", "6080"))
    return int(environ.get("NIMBUS_HEALTH_PORT", "0"))


def check(service: str, port: int, host: str = "127.0.0.1") -> tuple[bool, str]:
    """Whether ``/healthz`` answers 200, and what to print."""
    if not port:
        return False, f"{service or 'this command'}: no health port (set NIMBUS_HEALTH_PORT)"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as resp:
            return True, resp.read().decode()
    except OSError as exc:  # URLError and HTTPError (a 503) included
        return False, f"{service}: {exc}"


def main() -> int:
    with open("/proc/1/cmdline", "rb") as fh:
        service = service_of(fh.read())
    healthy, message = check(service, port_of(service, os.environ))
    print(message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
