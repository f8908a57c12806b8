"""A new project's default network is there before its first server: clients look
it up by name and then boot on it (gophercloud lists os-tenant-networks before
every server; ``openstack server create --network private`` asks the network
endpoint first)."""

from __future__ import annotations

import asyncio

from tests.e2e.acting import active_server, delete_and_wait
from tests.e2e.client import Api
from tests.e2e.projects import new_project


async def _neutron_networks(api: Api, query: str = "") -> list[dict]:
    r = await api.cloud.request("GET", f"/v2.0/networks{query}", token=api.token,
                                base=api.cloud.network_url)
    assert r.status == 200, r.raw
    return [n for n in r.json["networks"] if not n.get("router:external")]


async def test_a_new_project_lists_its_default_network_before_any_server(cloud):
    api, _ = await new_project(cloud)
    assert await cloud.fetchval("SELECT count(*) FROM networks WHERE project_id = $1",
                                api.project_id) == 0

    r = await api.get("/os-tenant-networks")
    assert r.status == 200, r.raw
    (tenant_net,) = r.json["networks"]
    assert tenant_net["label"] == "private" and tenant_net["cidr"].endswith("/22")

    # The same one network on the compute API's other list and the network endpoint,
    # looked up by name as clients do; listing again makes no second one.
    listed = await asyncio.gather(api.get("/os-networks"), _neutron_networks(api, "?name=private"),
                                  api.get("/os-tenant-networks"))
    assert [n["id"] for n in listed[0].json["networks"]] == [tenant_net["id"]]
    assert [n["id"] for n in listed[1]] == [tenant_net["id"]]
    assert listed[2].json == r.json
    assert await cloud.fetchval("SELECT count(*) FROM networks WHERE project_id = $1",
                                api.project_id) == 1

    # A server booted on it by id lands on it.
    sid = await active_server(api, "on-private", networks=[{"uuid": tenant_net["id"]}])
    server = await api.server(sid)
    assert list(server["addresses"]) == ["private"]
    await delete_and_wait(api, sid)


async def test_concurrent_first_lists_make_one_network(cloud):
    api, _ = await new_project(cloud)
    answers = await asyncio.gather(*(api.get("/os-tenant-networks") for _ in range(4)),
                                   _neutron_networks(api), _neutron_networks(api))
    ids = {n["id"] for r in answers[:4] for n in r.json["networks"]}
    ids |= {n["id"] for nets in answers[4:] for n in nets}
    assert len(ids) == 1
    assert await cloud.fetchval("SELECT count(*) FROM networks WHERE project_id = $1",
                                api.project_id) == 1
