"""The smoke subset of issue 13: identity, boot to ACTIVE in every zone, actions, lists,
delete, against whichever cloud conftest.py targets, as a user's client would.

The three servers of the module are booted once (one per availability zone) and
deleted by the last test; the fixture deletes whatever is left when a test fails.
Each wait is a condition polled to a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.e2e.client import eventually
from tests.smoke.client import Target, User, call

ZONES = ("az1", "az2", "az3")
# CONTRACT.md's seeded flavors (the spec's table of section 2.1.2).
FLAVOR_IDS = {"100", "101", "102", "103", "104", "105", "110", "114", "203", "204", "205"}
WAIT_S = 60.0  # a cluster on a busy 2-core machine boots in seconds; this is the bound


async def test_v3_token_names_the_user_the_project_and_the_endpoints(http, target: Target):
    r = await call(http, "POST", f"{target.identity_root}/v3/auth/tokens",
                   json=target.v3_body())
    assert r.status == 201, r.json
    assert r.headers["X-Subject-Token"]
    token = r.json["token"]
    assert (token["user"]["name"], token["project"]["name"]) == (target.user, target.project)
    assert token["project"]["domain"]["id"] == "default"
    types = {entry["type"] for entry in token["catalog"]}
    assert {"identity", "compute", "image", "network"} <= types, types
    (compute,) = [e for e in token["catalog"] if e["type"] == "compute"]
    interfaces = {e["interface"]: e["url"] for e in compute["endpoints"]}
    assert set(interfaces) == {"public", "internal", "admin"}
    assert interfaces["public"].endswith(f"/v2/{token['project']['id']}")


async def test_v2_token_has_a_tenant_and_a_compute_endpoint(http, target: Target):
    r = await call(http, "POST", f"{target.identity_root}/v2.0/tokens", json=target.v2_body())
    assert r.status == 200, r.json
    access = r.json["access"]
    assert access["token"]["id"] and access["token"]["expires"]
    assert access["token"]["tenant"]["name"] == target.project
    assert access["user"]["name"] == target.user
    (compute,) = [s for s in access["serviceCatalog"] if s["type"] == "compute"]
    tenant = access["token"]["tenant"]["id"]
    assert compute["endpoints"][0]["publicURL"].endswith(f"/v2/{tenant}")


async def test_a_bad_password_is_401_in_both_versions(http, target: Target):
    wrong = f"not-{target.password}"
    v3 = await call(http, "POST", f"{target.identity_root}/v3/auth/tokens",
                    json=target.v3_body(wrong))
    v2 = await call(http, "POST", f"{target.identity_root}/v2.0/tokens",
                    json=target.v2_body(wrong))
    assert (v3.status, v2.status) == (401, 401)
    assert "X-Subject-Token" not in v3.headers


@pytest.fixture(scope="module")
async def servers(user: User) -> AsyncIterator[dict[str, str]]:
    """One server in each zone, ACTIVE: ``{zone: server id}``. Whatever is left
    of them afterwards (a failed test's) is deleted and waited for."""
    run = uuid.uuid4().hex[:8]
    made: dict[str, str] = {}
    try:
        for zone in ZONES:
            r = await user.compute("POST", "/servers", json={"server": {
                "name": f"smoke-{run}-{zone}", "imageRef": await _image_id(user),
                "flavorRef": "100", "availability_zone": zone}})
            assert r.status == 202, (r.status, r.json)
            made[zone] = r.json["server"]["id"]
        await asyncio.gather(*(_settled(user, sid, "ACTIVE") for sid in made.values()))
        yield made
    finally:
        for sid in made.values():
            await user.compute("DELETE", f"/servers/{sid}")
        await asyncio.gather(*(_gone(user, sid) for sid in made.values()))


async def _image_id(user: User) -> str:
    r = await user.compute("GET", "/images/detail")
    assert r.status == 200, r.json
    return next(i["id"] for i in r.json["images"] if i["status"] == "ACTIVE")


async def _settled(user: User, sid: str, status: str) -> dict:
    """The server once it is ``status`` with no task in progress."""
    async def check():
        server = await user.server(sid)
        assert server is not None and server["status"] != "ERROR", server
        done = server["status"] == status and server["OS-EXT-STS:task_state"] is None
        return server if done else None
    return await eventually(check, timeout=WAIT_S)


async def _gone(user: User, sid: str) -> None:
    async def check():
        return await user.server(sid) is None
    await eventually(check, timeout=WAIT_S)


async def test_one_server_boots_to_active_in_each_zone(user, servers):
    for zone, sid in servers.items():
        server = await user.server(sid)
        assert (server["status"], server["OS-EXT-AZ:availability_zone"]) == ("ACTIVE", zone)
        assert server["OS-EXT-STS:power_state"] == 1 and server["hostId"]
        assert server["tenant_id"] == user.project_id
        assert server["addresses"], server  # the project's default network gave it one
    # Three zones, three agents: three different hosts.
    assert len({(await user.server(sid))["hostId"] for sid in servers.values()}) == 3


@pytest.mark.parametrize("body, status, power", [
    ({"reboot": {"type": "SOFT"}}, "ACTIVE", 1),
    ({"os-stop": None}, "SHUTOFF", 4),
    ({"os-start": None}, "ACTIVE", 1),
], ids=["reboot", "stop", "start"])
async def test_actions_reach_their_state(user, servers, body, status, power):
    sid = servers["az1"]
    r = await user.compute("POST", f"/servers/{sid}/action", json=body)
    assert r.status == 202, (r.status, r.json)
    rid = r.headers["X-Compute-Request-Id"]
    server = await _settled(user, sid, status)
    assert server["OS-EXT-STS:power_state"] == power
    # The action is recorded under its request id, and every step of it succeeded.
    name = {"reboot": "reboot", "os-stop": "stop", "os-start": "start"}[next(iter(body))]

    async def finished():
        a = await user.compute("GET", f"/servers/{sid}/os-instance-actions/{rid}")
        assert a.status == 200, a.json
        events = a.json["instanceAction"]["events"]
        return a.json["instanceAction"] if events and all(e["finish_time"] for e in events) \
            else None
    action = await eventually(finished, timeout=WAIT_S)
    assert action["action"] == name
    assert {e["result"] for e in action["events"]} == {"Success"}, action["events"]


async def test_lists_show_the_servers_images_flavors_and_networks(user, servers):
    r = await user.compute("GET", "/servers/detail")
    assert r.status == 200, r.json
    listed = {s["id"]: s for s in r.json["servers"]}
    for zone, sid in servers.items():
        assert listed[sid]["OS-EXT-AZ:availability_zone"] == zone
        assert listed[sid]["status"] == "ACTIVE"

    images = await user.compute("GET", "/images/detail")
    assert images.status == 200
    active = {i["id"] for i in images.json["images"] if i["status"] == "ACTIVE"}
    assert len(active) >= 2, images.json
    flavors = await user.compute("GET", "/flavors/detail")
    assert flavors.status == 200
    by_id = {f["id"]: f for f in flavors.json["flavors"]}
    assert FLAVOR_IDS <= set(by_id)
    assert (by_id["100"]["name"], by_id["100"]["ram"], by_id["100"]["vcpus"],
            by_id["100"]["disk"]) == ("standard.xsmall", 1024, 1, 10)

    # The image endpoint lists the same images; the network endpoint the project's network.
    glance = await user.service("image", "/v2/images")
    assert glance.status == 200, glance.json
    assert active <= {i["id"] for i in glance.json["images"] if i["status"] == "active"}
    neutron = await user.service("network", "/v2.0/networks")
    assert neutron.status == 200, neutron.json
    mine = [n for n in neutron.json["networks"] if n["project_id"] == user.project_id]
    assert [n["status"] for n in mine] == ["ACTIVE"], neutron.json


async def test_delete_makes_each_server_404(user, servers):
    for sid in servers.values():
        r = await user.compute("DELETE", f"/servers/{sid}")
        assert r.status == 204, (r.status, r.json)
    await asyncio.gather(*(_gone(user, sid) for sid in servers.values()))
    r = await user.compute("GET", "/servers")
    assert not set(servers.values()) & {s["id"] for s in r.json["servers"]}
