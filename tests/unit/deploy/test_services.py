"""The services `make up` and the test clouds run (deploy.local.supervisor)."""

from __future__ import annotations

from deploy.local.services import ServicePorts, default_services


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


def test_replicas_have_names_and_health_ports_of_their_own():
    ports = ServicePorts.free(replicas=6)
    specs = default_services(ports=ports, replicas={"api": 2, "scheduler": 2,
                                                    "consoleproxy": 2})
    by_name = {s.name: s for s in specs}
    assert [n for n in by_name if n.split("-")[0] in ("api", "scheduler", "consoleproxy")] == [
        "api", "api-2", "scheduler", "scheduler-2", "consoleproxy", "consoleproxy-2"]
    urls = [s.health_url for s in specs]
    assert len(set(urls)) == len(urls), urls
    # The api processes share every port of the api; each has its own health port.
    api, api2 = by_name["api"], by_name["api-2"]
    assert api.env_extra["NIMBUS_API_PORT"] == api2.env_extra["NIMBUS_API_PORT"] == str(ports.api)
    assert {api.env_extra["NIMBUS_HEALTH_PORT"], api2.env_extra["NIMBUS_HEALTH_PORT"]} \
        <= {str(p) for p in ports.replica_health}
    # The first scheduler keeps its port; the second takes one of the replicas'.
    assert by_name["scheduler"].env_extra["NIMBUS_HEALTH_PORT"] == str(ports.scheduler_health)
    assert int(by_name["scheduler-2"].env_extra["NIMBUS_HEALTH_PORT"]) in ports.replica_health


def test_replicas_are_refused_for_agents_and_beyond_the_ports():
    import pytest
    with pytest.raises(ValueError, match="only"):
        default_services(replicas={"compute-az1": 2})
    with pytest.raises(ValueError, match="not enough"):
        default_services(ports=ServicePorts.free(replicas=1), replicas={"scheduler": 3})


def test_api_workers_default_to_one_per_core(monkeypatch):
    from deploy.local.services import api_workers
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert api_workers({}) == 4
    assert api_workers({"NIMBUS_API_WORKERS": "3"}) == 3
    assert api_workers({"NIMBUS_API_WORKERS": "0"}) == 1


def test_compute_hosts_are_split_over_the_agents_as_evenly_as_can_be():
    import pytest
    from deploy.local.services import compute_hosts_total, split_hosts
    assert split_hosts(1000, 3) == [334, 333, 333]
    assert split_hosts(30, 3) == [10, 10, 10]
    assert split_hosts(5, 3) == [2, 2, 1]
    assert split_hosts(3, 3) == [1, 1, 1]
    with pytest.raises(ValueError, match="at least 3"):
        split_hosts(2, 3)
    assert compute_hosts_total({}) is None
    assert compute_hosts_total({"NIMBUS_COMPUTE_HOSTS_TOTAL": "1000"}) == 1000


def test_each_agent_is_told_its_share_of_the_hosts():
    agents = [s for s in default_services(compute_hosts=1000) if s.name.startswith("compute-")]
    assert [(s.name, s.env_extra["NIMBUS_COMPUTE_HOST"], s.env_extra["NIMBUS_COMPUTE_HOSTS"])
            for s in agents] == [("compute-az1", "compute-az1", "334"),
                                 ("compute-az2", "compute-az2", "333"),
                                 ("compute-az3", "compute-az3", "333")]
    # Without compute_hosts an agent is one host, as before.
    assert all("NIMBUS_COMPUTE_HOSTS" not in s.env_extra
               for s in default_services() if s.name.startswith("compute-"))
