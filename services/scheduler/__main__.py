"""``python -m services.scheduler``: run one scheduler process until SIGTERM."""

from __future__ import annotations

import asyncio

from services.scheduler.app import run
from services.scheduler.settings import Settings
from shared.config import load
from shared.logging import configure


def main() -> None:
    settings = load(Settings)
    configure("scheduler", settings.log.level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
