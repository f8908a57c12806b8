"""``python -m services.api``: the compute API and identity in one process."""

import asyncio

from services.api.app import run
from services.api.settings import Settings
from shared import config, logging


def main() -> None:
    settings = config.load(Settings)
    logging.configure("api", settings.log.level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
