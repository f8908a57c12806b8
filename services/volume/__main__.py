"""``python -m services.volume``: run the volume service until SIGTERM/SIGINT.

Configuration: the TOML file named by ``NIMBUS_CONFIG`` and ``NIMBUS_*`` variables
(see ``services.volume.settings``). Health: ``GET /healthz`` on
``NIMBUS_HEALTH_PORT`` when that is set.
"""

from __future__ import annotations

import asyncio

from shared.config import load
from shared.logging import configure
from services.volume.app import SERVICE, create_worker
from services.volume.settings import Settings


async def _main(settings: Settings) -> None:
    worker = await create_worker(settings)
    await worker.run()


def main() -> None:
    settings = load(Settings)
    configure(SERVICE, settings.log.level)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
