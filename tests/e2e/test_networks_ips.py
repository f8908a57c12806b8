"""Networks and fixed addresses end to end: ``GET .../ips`` (4.4.1.20-21), further
networks made by the management command, create server with ``networks``
(uuid, fixed_ip, several networks), in JSON and XML, and the faults."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import uuid

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import NS, Api, Cloud, eventually
from tests.e2e.projects import delete_all, manage, new_project

def active(s: dict | None) -> bool:
    return bool(s) and s["status"] == "ACTIVE"


def gone(s: dict | None) -> bool:
    return s is None


async def boot_active(api: Api, **extra: object) -> dict:
    r = await api.boot(**extra)
    assert r.status == 202, r.raw
    server, _ = await api.wait_status(r.json["server"]["id"], active)
    assert server is not None
    return server


async def create_network(cloud: Cloud, project: str, name: str,
                         cidr: str | None = None) -> dict[str, tuple[str, str]]:
    """``manage create-network``; every network of the project: name -> (id, cidr)."""
    args = ["create-network", project, name] + (["--cidr", cidr] if cidr else [])
    out = (await manage(cloud, *args)).stdout
    nets = dict((m[0], (m[1], m[2])) for m in re.findall(
        r"network (\S+) id ([0-9a-f-]{36}) cidr (\S+)", out))
    assert name in nets, out
    return nets


# --------------------------------------------------------------------------- GET ips


async def test_server_ips_json_and_xml(demo: Api, alt: Api) -> None:
    server = await boot_active(demo, name="ips")
    sid = server["id"]
    (label, detailed), = server["addresses"].items()
    addr = detailed[0]["addr"]
    assert label == "private"
    try:
        r = await demo.get(f"/servers/{sid}/ips")
        assert r.status == 200
        assert r.json == {"addresses": {"private": [{"version": 4, "addr": addr}]}}
        r = await demo.get(f"/servers/{sid}/ips/private")
        assert r.status == 200 and r.json == {"private": [{"version": 4, "addr": addr}]}

        r = await demo.get(f"/servers/{sid}/ips", xml=True)
        assert r.status == 200 and r.xml.tag == f"{{{NS}}}addresses"
        [network] = r.xml
        assert network.tag == f"{{{NS}}}network" and network.get("id") == "private"
        [ip] = network
        assert (ip.tag, ip.get("version"), ip.get("addr")) == (f"{{{NS}}}ip", "4", addr)
        r = await demo.get(f"/servers/{sid}/ips/private.xml")
        assert r.status == 200 and r.xml.tag == f"{{{NS}}}network"
        assert r.xml.get("id") == "private"
        assert [(i.get("version"), i.get("addr")) for i in r.xml] == [("4", addr)]

        r = await demo.get(f"/servers/{sid}/ips/nosuchnet")
        assert r.status == 404 and r.json["itemNotFound"]["code"] == 404
        r = await demo.get(f"/servers/{sid}/ips/nosuchnet", xml=True)
        assert r.status == 404 and r.xml.tag == f"{{{NS}}}itemNotFound"
        # Another project's server, and no server at all.
        for path in (f"/servers/{sid}/ips", f"/servers/{sid}/ips/private"):
            r = await alt.get(path)
            assert r.status == 404 and "itemNotFound" in r.json
        assert (await demo.get("/servers/nope/ips")).status == 404
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)


# --------------------------------------------------------------------------- os-hide-server-addresses

HIDE = "os-hide-server-addresses"


def _xml_addresses(server) -> list[tuple[str, str]]:
    """(network, addr) of every ip in an XML server's <addresses>."""
    return [(net.get("id"), ip.get("addr"))
            for net in server.find(f"{{{NS}}}addresses") for ip in net]


async def test_addresses_are_hidden_while_building(demo: Api) -> None:
    """os-hide-server-addresses with its default (vm_state building): get and list
    detail show a building server's addresses empty, in JSON and XML, though it
    has them (``.../ips`` shows them, as in Nova); once ACTIVE they show."""
    r = await demo.get(f"/extensions/{HIDE}")
    assert r.status == 200 and r.json["extension"] == {
        "alias": HIDE, "name": "HideServerAddresses",
        "namespace": "http://docs.openstack.org/compute/ext/hide_server_addresses/api/v1.1",
        "updated": "2012-12-11T00:00:00+00:00", "links": [],
        "description": "Support hiding server addresses in certain states."}
    assert HIDE in {e["alias"] for e in (await demo.get("/extensions")).json["extensions"]}
    assert (await demo.get(f"/extensions/{HIDE}.xml")).xml.get("alias") == HIDE

    name = f"hide-{uuid.uuid4().hex[:8]}"
    r = await demo.boot(name=name)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    detail = f"/servers/detail?name=^{name}$"
    # Each answer is one read of the server: its status and addresses agree. An
    # address once shown by .../ips stays through the build, so every answer
    # after it that still says BUILD is of a server that has an address.
    hidden = {"get": 0, "get.xml": 0, "detail": 0, "detail.xml": 0}
    has_address = False
    while True:
        has_address = has_address or bool((await demo.get(f"/servers/{sid}/ips")).json["addresses"])
        got = await demo.get(f"/servers/{sid}")
        got_xml = await demo.get(f"/servers/{sid}", xml=True)
        (listed,) = (await demo.get(detail)).json["servers"]
        (listed_xml,) = (await demo.get(detail, xml=True)).xml
        answers = {"get": (got.json["server"]["status"], got.json["server"]["addresses"]),
                   "get.xml": (got_xml.xml.get("status"), _xml_addresses(got_xml.xml)),
                   "detail": (listed["status"], listed["addresses"]),
                   "detail.xml": (listed_xml.get("status"), _xml_addresses(listed_xml))}
        for kind, (status, addresses) in answers.items():
            if status.startswith("BUILD"):
                assert not addresses, (kind, status, addresses)
                hidden[kind] += has_address
        if got.json["server"]["status"] == "ACTIVE":
            break
        assert got.json["server"]["status"].startswith("BUILD"), got.json
    assert all(hidden.values()), hidden
    try:
        ips = (await demo.get(f"/servers/{sid}/ips")).json["addresses"]
        ((net, [ip]),) = ips.items()
        server = await demo.server(sid)
        assert [(net, a["addr"]) for a in server["addresses"][net]] == [(net, ip["addr"])]
        assert _xml_addresses((await demo.get(f"/servers/{sid}", xml=True)).xml) == [
            (net, ip["addr"])]
        (listed,) = (await demo.get(detail)).json["servers"]
        assert listed["addresses"] == server["addresses"]
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)


# --------------------------------------------------------------------------- further networks


async def test_create_network_then_servers_must_name_theirs(cloud: Cloud) -> None:
    api, name = await new_project(cloud)
    nets = await create_network(cloud, name, "backend", "192.168.50.0/24")
    assert set(nets) == {"private", "backend"}
    private_id, backend_id = nets["private"][0], nets["backend"][0]
    assert nets["backend"][1] == "192.168.50.0/24"
    # Creating it again, or over another network's subnet, is refused.
    again = await manage(cloud, "create-network", name, "backend", check=False)
    assert again.returncode != 0 and "already has a network named 'backend'" in again.stderr
    other = await manage(cloud, "create-network", name, "x", "--cidr", "192.168.50.128/25",
                         check=False)
    assert other.returncode != 0 and "overlaps network backend" in other.stderr
    try:
        r = await api.boot(name="unnamed")
        assert r.status == 400
        assert "Multiple possible networks found" in r.json["badRequest"]["message"]

        server = await boot_active(api, name="two-nets",
                                   networks=[{"uuid": backend_id}, {"uuid": private_id}])
        assert list(server["addresses"]) == ["backend", "private"]
        [b] = server["addresses"]["backend"]
        assert b["addr"] == "192.168.50.2" and b["OS-EXT-IPS:type"] == "fixed"
        [p] = server["addresses"]["private"]
        assert b["OS-EXT-IPS-MAC:mac_addr"] != p["OS-EXT-IPS-MAC:mac_addr"]
        r = await api.get(f"/servers/{server['id']}/ips/backend")
        assert r.json == {"backend": [{"version": 4, "addr": "192.168.50.2"}]}

        # The same in XML, with a fixed_ip.
        body = (f'<server xmlns="{NS}" name="xml-nets" imageRef="{CIRROS_IMAGE_ID}" '
                f'flavorRef="100"><networks><network uuid="{backend_id}" '
                f'fixed_ip="192.168.50.99"/></networks></server>')
        r = await api.post("/servers", data=body, headers={"Content-Type": "application/xml"})
        assert r.status == 202, r.raw
        sid = r.json["server"]["id"]
        server, _ = await api.wait_status(sid, active)
        assert server["addresses"] == {"backend": [{
            "version": 4, "addr": "192.168.50.99", "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": server["addresses"]["backend"][0]["OS-EXT-IPS-MAC:mac_addr"]}]}
    finally:
        await delete_all(api)


async def test_fixed_ip_faults_and_reuse(cloud: Cloud, alt: Api) -> None:
    api, name = await new_project(cloud)
    nets = await create_network(cloud, name, "db", "192.168.60.0/28")
    db_id = nets["db"][0]
    try:
        server = await boot_active(api, name="fixed",
                                   networks=[{"uuid": db_id, "fixed_ip": "192.168.60.5"}])
        assert server["addresses"]["db"][0]["addr"] == "192.168.60.5"

        async def refused(networks: list[dict], message: str, **extra: object) -> None:
            r = await api.boot(name="refused", networks=networks, **extra)
            assert r.status == 400, r.raw
            assert message in r.json["badRequest"]["message"], r.json

        await refused([{"uuid": db_id, "fixed_ip": "192.168.60.5"}],
                      "Fixed IP address 192.168.60.5 is already in use")
        for outside in ("192.168.60.0", "192.168.60.1", "192.168.60.15", "10.9.9.9"):
            await refused([{"uuid": db_id, "fixed_ip": outside}],
                          "is not an address servers can have on network db")
        await refused([{"uuid": db_id, "fixed_ip": "not-an-ip"}], "Invalid fixed IP address")
        await refused([{"uuid": db_id, "fixed_ip": "192.168.60.6"}], "max_count must be 1",
                      max_count=2)
        await refused([{"uuid": db_id}, {"uuid": db_id}], "is duplicated")
        await refused([{"uuid": "not-a-uuid"}], "Bad networks format")
        await refused([{"port": "8b0f3f1e-5b2a-4f50-a7f4-7c3d4b9e1a11"}], "Booting with a port")
        # Another project's network exists but cannot be used (and is not told apart).
        r = await alt.boot(name="theirs", networks=[{"uuid": db_id}])
        assert r.status == 400 and f"Network {db_id} could not be found" in r.json[
            "badRequest"]["message"]
        # Nothing was written for the refused ones.
        names = [s["name"] for s in (await api.get("/servers")).json["servers"]]
        assert names == ["fixed"]

        # Deleting the server frees its address for the next one.
        await api.delete(f"/servers/{server['id']}")
        await api.wait_status(server["id"], gone)
        again = await boot_active(api, name="again",
                                  networks=[{"uuid": db_id, "fixed_ip": "192.168.60.5"}])
        assert again["addresses"]["db"][0]["addr"] == "192.168.60.5"
    finally:
        await delete_all(api)


async def test_concurrent_creates_for_one_fixed_ip_give_it_to_one_server(cloud: Cloud) -> None:
    api, name = await new_project(cloud)
    nets = await create_network(cloud, name, "race", "192.168.70.0/24")
    race_id = nets["race"][0]
    try:
        results = await asyncio.gather(*(
            api.boot(name=f"race-{i}", networks=[{"uuid": race_id, "fixed_ip": "192.168.70.7"}])
            for i in range(8)))
        accepted = [r for r in results if r.status == 202]
        refused = [r for r in results if r.status != 202]
        assert len(accepted) == 1, [r.status for r in results]
        assert all(r.status == 400 and "already in use" in r.json["badRequest"]["message"]
                   for r in refused)
        sid = accepted[0].json["server"]["id"]
        server, _ = await api.wait_status(sid, active)
        assert server["addresses"]["race"][0]["addr"] == "192.168.70.7"
        assert len((await api.get("/servers")).json["servers"]) == 1
        # And many servers at once on one network never share an address.
        r = await api.boot(name="many", networks=[{"uuid": race_id}], min_count=10,
                           max_count=10)
        assert r.status == 202, r.raw

        async def all_active() -> list[dict] | None:
            servers = (await api.get("/servers/detail")).json["servers"]
            return servers if all(s["status"] == "ACTIVE" for s in servers) else None

        servers = await eventually(all_active, timeout=60)
        addrs = [ip["addr"] for s in servers for ip in s["addresses"]["race"]]
        assert len(addrs) == 11 and len(set(addrs)) == 11
        assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("192.168.70.0/24")
                   for a in addrs)
    finally:
        await delete_all(api)
