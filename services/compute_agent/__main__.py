"""``python -m services.compute_agent``: run one compute agent."""

import asyncio

from services.compute_agent.agent import run
from services.compute_agent.settings import Settings
from shared import config, logging


def main() -> None:
    settings = config.load(Settings)
    logging.configure("compute-agent", settings.log.level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
