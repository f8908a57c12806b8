"""Scheduler messages. v1: ScheduleBuild."""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.compute import BuildServer

QUEUE = "scheduler"


class ScheduleBuild(msgspec.Struct, tag="schedule_build", frozen=True, kw_only=True):
    """Find a host for a server in BUILD(scheduling) and hand ``build`` to it."""

    build: BuildServer
    availability_zone: str | None = None
    hints: dict[str, object] = {}
    excluded_hosts: tuple[str, ...] = ()

    @property
    def server_id(self) -> UUID:
        return self.build.server_id


SchedulerMessage = ScheduleBuild
