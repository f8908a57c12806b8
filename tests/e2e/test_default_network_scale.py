"""No fixed ceiling of servers per project (issue 14, point 4), through the API.

* 1,000 servers in one project on its default network (a /22 by default: 1,021
  addresses), booted 50 at a time, all ACTIVE with distinct fixed IPs, then
  deleted. Before, the 254th ended in ERROR "No fixed IP addresses available
  for network private (10.0.1.0/24)".
* With /28 default networks (13 addresses) in a /26 supernet (four /28s), a
  project's network grows past its first subnet as it fills, and the fault when
  the supernet has no room left says so.

Each has a cloud of its own: no spawn delay, hosts roomy enough for 1,000 of
flavor 100, and (for the second) the small network settings.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.e2e.client import NS, Api, Cloud, eventually, fresh_cloud
from tests.e2e.conftest import E2E_ENV
from tests.e2e.projects import manage, new_project

FAST_ENV = {**E2E_ENV, "NIMBUS_FAKE_SPAWN_DELAY_S": "0", "NIMBUS_FAKE_DESTROY_DELAY_S": "0",
            # 1,000 of flavor 100 (1 GB, 10 GB, 1 vCPU) on the three hosts with room.
            "NIMBUS_FAKE_RAM_MB": "1000000", "NIMBUS_FAKE_DISK_GB": "100000",
            "NIMBUS_FAKE_VCPUS": "1000", "NIMBUS_LOG_LEVEL": "info"}
IN_FLIGHT = 50


@pytest.fixture(scope="module")
async def fast_cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    async with fresh_cloud(infra, migrated_template, "e2escale", FAST_ENV) as c:
        yield c


@pytest.fixture(scope="module")
async def small_net_cloud(infra, migrated_template) -> AsyncIterator[Cloud]:
    async with fresh_cloud(infra, migrated_template, "e2esmallnet", {
            **FAST_ENV, "NIMBUS_NETWORK_DEFAULT_PREFIXLEN": "28",
            "NIMBUS_NETWORK_PROJECT_SUPERNET": "10.0.0.0/26"}) as c:
        yield c


async def unlimited_project(cloud: Cloud) -> Api:
    """A project without quotas on instances and RAM, nor rate limits on creates and deletes."""
    api, name = await new_project(cloud)
    # Each is a management command of its own: run them side by side.
    await asyncio.gather(
        manage(cloud, "set-quota", name, "maxTotalInstances", "-1"),
        manage(cloud, "set-quota", name, "maxTotalRAMSize", "-1"),
        *(manage(cloud, "set-rate-limit", name, verb, uri, regex, "1000000", unit)
          for verb, uri, regex, unit in (("POST", "*", ".*", "MINUTE"),
                                         ("POST", "*/servers", "^/servers", "DAY"),
                                         ("DELETE", "*", ".*", "MINUTE"))))
    limits = (await api.get("/limits")).json["limits"]["absolute"]
    assert (limits["maxTotalInstances"], limits["maxTotalRAMSize"]) == (-1, -1)
    return api


async def at_most(n: int, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Await every call, ``n`` of them in flight at a time, in order of results."""
    gate = asyncio.Semaphore(n)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def boot_many(api: Api, count: int, prefix: str) -> list[str]:
    async def boot(i: int) -> str:
        r = await api.boot(name=f"{prefix}-{i}")
        assert r.status == 202, r.raw
        return r.json["server"]["id"]

    return await at_most(IN_FLIGHT, [lambda i=i: boot(i) for i in range(count)])


async def settled_detail(api: Api, ids: list[str], timeout: float) -> dict[str, dict]:
    """The detail list once none of ``ids`` is building (one page: at most 1,000)."""
    wanted = set(ids)

    async def check() -> dict[str, dict] | None:
        r = await api.get("/servers/detail?limit=1000")
        assert r.status == 200, r.raw
        found = {s["id"]: s for s in r.json["servers"] if s["id"] in wanted}
        if len(found) == len(wanted) and all(s["status"] in ("ACTIVE", "ERROR")
                                             for s in found.values()):
            return found
        return None

    return await eventually(check, timeout=timeout, interval=0.5)


def fixed_ips(server: dict) -> list[str]:
    return [a["addr"] for a in server["addresses"]["private"]]


async def delete_all(cloud: Cloud, api: Api, ids: list[str]) -> None:
    async def delete(sid: str) -> None:
        r = await api.delete(f"/servers/{sid}")
        assert r.status == 204, r.raw

    await at_most(IN_FLIGHT, [lambda s=s: delete(s) for s in ids])

    async def gone() -> bool:
        r = await api.get("/servers?limit=1000")
        return r.status == 200 and not r.json["servers"]

    await eventually(gone, timeout=120, interval=0.5)
    # Every address is back in the pool once the guests are reaped.
    await eventually(lambda: cloud.fetchval(
        "SELECT count(*) = 0 FROM fixed_ips f JOIN networks n ON n.id = f.network_id "
        "WHERE n.project_id = $1 AND f.server_id IS NOT NULL", api.project_id), timeout=60)


async def test_a_project_boots_1000_servers_on_its_default_network(fast_cloud: Cloud) -> None:
    api = await unlimited_project(fast_cloud)
    ids = await boot_many(api, 1000, "k")
    servers = await settled_detail(api, ids, timeout=180)
    errors = {sid: s.get("fault") for sid, s in servers.items() if s["status"] != "ACTIVE"}
    assert errors == {}
    addresses = [a for s in servers.values() for a in fixed_ips(s)]
    assert len(addresses) == 1000 and len(set(addresses)) == 1000
    # All on the one default network, a /22, without growing.
    (net,) = (await api.get("/os-tenant-networks")).json["networks"]
    assert (net["label"], ipaddress.IPv4Network(net["cidr"]).prefixlen) == ("private", 22)
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network(net["cidr"]) for a in addresses)
    await delete_all(fast_cloud, api, ids)


async def _neutron(cloud: Cloud, api: Api, path: str) -> Any:
    r = await cloud.request("GET", path, token=api.token, base=cloud.network_url)
    assert r.status == 200, r.raw
    return r.json


async def test_a_small_default_network_grows_and_says_when_the_supernet_is_full(
        small_net_cloud: Cloud) -> None:
    cloud = small_net_cloud
    api = await unlimited_project(cloud)
    # Four /28s of 13 addresses fill the /26: boot them in two rounds.
    first = await boot_many(api, 20, "a")
    servers = await settled_detail(api, first, timeout=60)
    rest = await boot_many(api, 32, "b")
    servers |= await settled_detail(api, rest, timeout=60)
    assert {s["status"] for s in servers.values()} == {"ACTIVE"}
    addresses = {sid: ipaddress.IPv4Address(fixed_ips(s)[0]) for sid, s in servers.items()}
    assert len(set(addresses.values())) == 52

    # One network, four subnets, listed by the network endpoint; every port's
    # subnet is the one its address is in.
    (network,) = [n for n in (await _neutron(cloud, api, "/v2.0/networks"))["networks"]
                  if not n["router:external"]]
    subnets = (await _neutron(cloud, api, f"/v2.0/subnets?network_id={network['id']}"))["subnets"]
    assert [s["cidr"] for s in subnets] == [f"10.0.0.{16 * i}/28" for i in range(4)]
    assert [s["name"] for s in subnets] == ["private", "private-2", "private-3", "private-4"]
    assert [s["id"] for s in subnets] == network["subnets"]
    assert [s["gateway_ip"] for s in subnets] == [f"10.0.0.{16 * i + 1}" for i in range(4)]
    by_id = {s["id"]: ipaddress.IPv4Network(s["cidr"]) for s in subnets}
    ports = (await _neutron(cloud, api, "/v2.0/ports"))["ports"]
    assert len(ports) == 52
    for port in ports:
        (ip,) = port["fixed_ips"]
        assert ipaddress.IPv4Address(ip["ip_address"]) in by_id[ip["subnet_id"]]
        assert ipaddress.IPv4Address(ip["ip_address"]) == addresses[port["device_id"]]
    # os-networks shows the network's first subnet, as before.
    (net,) = (await api.get("/os-networks")).json["networks"]
    assert (net["id"], net["cidr"]) == (network["id"], "10.0.0.0/28")
    # A server on the last subnet shows its address in XML as in JSON.
    last = next(sid for sid, a in addresses.items() if a == ipaddress.IPv4Address("10.0.0.62"))
    r = await api.get(f"/servers/{last}.xml")
    assert [a.get("addr") for a in r.xml.iter(f"{{{NS}}}ip")] == ["10.0.0.62"]

    # The supernet is full: the next server ends in ERROR, and says why.
    [over] = await boot_many(api, 1, "over")
    (server,) = (await settled_detail(api, [over], timeout=30)).values()
    assert server["status"] == "ERROR"
    assert server["fault"]["message"] == (
        "No fixed IP addresses available for network private (10.0.0.0/28 and 3 more "
        "subnets): the project supernet 10.0.0.0/26 has no /28 left for another subnet.")
    await delete_all(cloud, api, [*first, *rest, over])
