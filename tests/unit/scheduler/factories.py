"""Small builders for hosts and requests, so each test states only what it tests."""

from __future__ import annotations

import uuid
from typing import Any

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest
from shared.contracts.common import FlavorSpec


def host(name: str = "cn1", **kw: Any) -> HostState:
    fields: dict[str, Any] = dict(host=name, availability_zone="nova", total_ram_mb=65536,
                                  total_disk_gb=1000, total_vcpus=32)
    fields.update(kw)
    return HostState(**fields)


def request(ram_mb: int = 2048, disk_gb: int = 20, vcpus: int = 2, *, ephemeral_gb: int = 0,
            swap_mb: int = 0, **kw: Any) -> PlacementRequest:
    flavor = FlavorSpec(id="f1", name="test", ram_mb=ram_mb, disk_gb=disk_gb,
                        ephemeral_gb=ephemeral_gb, swap_mb=swap_mb, vcpus=vcpus)
    return PlacementRequest(server_id=uuid.uuid4(), flavor=flavor, **kw)
