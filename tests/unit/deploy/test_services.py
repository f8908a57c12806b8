"""The services `make up` and the test clouds run (deploy.local.supervisor)."""

from __future__ import annotations

from deploy.local.supervisor import ServicePorts, default_services


def test_every_worker_has_a_health_port_of_its_own():
    for ports in (ServicePorts(), ServicePorts.free()):
        specs = default_services(ports=ports)
        names = [s.name for s in specs]
        assert names[:4] == ["api", "scheduler", "network", "volume"]
        urls = [s.health_url for s in specs]
        assert len(set(urls)) == len(urls), urls
        [volume] = [s for s in specs if s.name == "volume"]
        assert list(volume.argv[1:]) == ["-m", "services.volume"]
        assert volume.env_extra["NIMBUS_HEALTH_PORT"] == str(ports.volume_health)
