"""Host weighers, one class per module, and the set the scheduler uses."""

from __future__ import annotations

from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers.base import HostWeigher, order_hosts
from services.scheduler.weighers.near import NearWeigher
from services.scheduler.weighers.ram import RamWeigher


def default_weighers(settings: SchedulerSettings) -> list[HostWeigher]:
    return [RamWeigher(settings.ram_weight_multiplier),
            NearWeigher(settings.near_weight_multiplier)]


__all__ = ["HostWeigher", "NearWeigher", "RamWeigher", "default_weighers", "order_hosts"]
