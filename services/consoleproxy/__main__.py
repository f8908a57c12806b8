"""``python -m services.consoleproxy``: the console proxy, until SIGTERM/SIGINT.

Configuration: the TOML file named by ``NIMBUS_CONFIG`` and ``NIMBUS_*`` variables
(see ``services.consoleproxy.settings``). Health: ``GET /healthz`` on its own port.
"""

from __future__ import annotations

import asyncio

from services.consoleproxy.app import SERVICE, run
from services.consoleproxy.settings import Settings
from shared.config import load
from shared.logging import configure


def main() -> None:
    settings = load(Settings)
    configure(SERVICE, settings.log.level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
