"""The image's HEALTHCHECK: ``GET /healthz`` of the service this container runs.

An image has one HEALTHCHECK but runs six services, so the check reads PID 1's
command line (``python -m services.<name>``) to find its port: the API's own port
(``NIMBUS_API_PORT``), the console proxy's (``NIMBUS_CONSOLEPROXY_PORT``), else a
worker's ``NIMBUS_HEALTH_PORT``. Standard library only; exit 0 healthy, 1 not.
"""

import os
import sys
import urllib.request


def _service() -> str:
    with open("/proc/1/cmdline", "rb") as fh:
        argv = fh.read().decode().split("\0")
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m":
            return argv[i + 1].removeprefix("services.")
    return ""


def _port(service: str) -> int:
    if service == "api":
        return int(os.environ.get("NIMBUS_API_PORT", "8774"))
    if service == "consoleproxy":
        return int(os.environ.get("NIMBUS_CONSOLEPROXY_PORT", "6080"))
    return int(os.environ.get("NIMBUS_HEALTH_PORT", "0"))


def main() -> int:
    service = _service()
    port = _port(service)
    if not port:
        print(f"{service or 'this command'}: no health port (set NIMBUS_HEALTH_PORT)")
        return 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            print(resp.read().decode())
            return 0
    except OSError as exc:  # URLError and HTTPError (503) included
        print(f"{service}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
