"""The names of the hosts one agent process simulates (``NIMBUS_COMPUTE_HOSTS``)."""

from __future__ import annotations

from services.compute_agent.agent import host_names
from services.compute_agent.settings import Settings
from shared import config


def test_one_host_is_named_as_the_agent():
    assert host_names("compute-az1", 1) == ["compute-az1"]


def test_many_hosts_are_numbered_from_one_with_four_digits():
    names = host_names("compute-az1", 334)
    assert names[:2] == ["compute-az1-0001", "compute-az1-0002"]
    assert names[-1] == "compute-az1-0334"
    assert len(set(names)) == 334
    assert sorted(names) == names  # by name is by number


def test_more_than_9999_hosts_take_more_digits():
    names = host_names("h", 12000)
    assert names[0] == "h-00001" and names[-1] == "h-12000"


def test_the_count_comes_from_the_environment_and_must_be_positive():
    import pytest
    base = {"NIMBUS_DATABASE_URL": "postgresql://x/y", "NIMBUS_AMQP_URL": "amqp://x/"}
    assert config.load(Settings, environ=base).compute.hosts == 1
    loaded = config.load(Settings, environ={**base, "NIMBUS_COMPUTE_HOSTS": "334"})
    assert loaded.compute.hosts == 334
    with pytest.raises(BaseException, match="hosts"):
        config.load(Settings, environ={**base, "NIMBUS_COMPUTE_HOSTS": "0"})


async def test_only_the_fake_driver_simulates_several_hosts():
    import pytest
    from services.compute_agent.agent import run
    settings = config.load(Settings, environ={
        "NIMBUS_DATABASE_URL": "postgresql://x/y", "NIMBUS_AMQP_URL": "amqp://x/",
        "NIMBUS_COMPUTE_HOSTS": "2", "NIMBUS_COMPUTE_DRIVER": "libvirt"})
    with pytest.raises(SystemExit, match="only the fake driver simulates several hosts"):
        await run(settings)  # refused before anything is reached
