"""The scheduler's settings load from the environment and reject nonsense."""

from __future__ import annotations

import uuid

import pytest

from services.scheduler.request import PlacementRequest
from services.scheduler.settings import SchedulerSettings, Settings
from shared.config import load
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BuildServer
from shared.contracts.scheduler import ScheduleBuild


def test_defaults() -> None:
    s = load(Settings, environ={})
    assert s.scheduler == SchedulerSettings()
    assert s.scheduler.service_down_time_s == 30.0 and s.scheduler.host_subset_size == 1


def test_environment_overrides() -> None:
    s = load(Settings, environ={"NIMBUS_SCHEDULER_SERVICE_DOWN_TIME_S": "12.5",
                                "NIMBUS_SCHEDULER_HOST_SUBSET_SIZE": "3",
                                "NIMBUS_HEALTH_PORT": "8099"})
    assert s.scheduler.service_down_time_s == 12.5
    assert s.scheduler.host_subset_size == 3
    assert s.health.port == 8099


@pytest.mark.parametrize("env", [{"NIMBUS_SCHEDULER_HOST_SUBSET_SIZE": "0"},
                                 {"NIMBUS_SCHEDULER_SERVICE_DOWN_TIME_S": "0"}])
def test_rejects_nonsense(env: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match=r"\[scheduler\]"):
        load(Settings, environ=env)


def test_request_from_message() -> None:
    flavor = FlavorSpec(id="3", name="m1.medium", ram_mb=4096, disk_gb=40, ephemeral_gb=10,
                        swap_mb=2048, vcpus=2)
    build = BuildServer(server_id=uuid.uuid4(), project_id="p", user_id="u", name="vm",
                        flavor=flavor, image=ImageSpec(id=uuid.uuid4(), name="img"))
    req = PlacementRequest.from_message(ScheduleBuild(build=build, availability_zone="az1",
                                                      hints={"group": "g"}, excluded_hosts=("x",)))
    assert (req.server_id, req.ram_mb, req.disk_gb, req.vcpus) == (build.server_id, 4096, 52, 2)
    assert (req.availability_zone, req.hints, req.excluded_hosts) == ("az1", {"group": "g"}, ("x",))
    # An empty zone string means "no zone", as the API may pass it through.
    assert PlacementRequest.from_message(ScheduleBuild(build=build, availability_zone="")) \
        .availability_zone is None
