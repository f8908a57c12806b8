"""Floating IPs end to end (sections 4.4.8, 4.4.22): allocate, list, get, deallocate,
addFloatingIp / removeFloatingIp (with fixed_address), in JSON and XML, the
quota, project isolation, the addresses they show in, and races.

The pool (``public``, 15.126.0.0/24) is shared by the session: every test gives
back what it allocates.
"""

from __future__ import annotations

import asyncio
import ipaddress

import openstack
from lxml import etree

from services.api.representation.xml_rules import EXTENSION_NAMESPACES
from tests.e2e.client import NS, Api, Cloud, eventually
from tests.e2e.projects import delete_all, new_project

POOL = ipaddress.IPv4Network("15.126.0.0/24")
IPS_NS = EXTENSION_NAMESPACES["OS-EXT-IPS"]
MAC_NS = EXTENSION_NAMESPACES["OS-EXT-IPS-MAC"]


def active(s: dict | None) -> bool:
    return bool(s) and s["status"] == "ACTIVE"


def gone(s: dict | None) -> bool:
    return s is None


async def boot_active(api: Api, name: str) -> dict:
    r = await api.boot(name=name)
    assert r.status == 202, r.raw
    server, _ = await api.wait_status(r.json["server"]["id"], active)
    assert server is not None
    return server


async def allocate(api: Api, **kw: object) -> dict:
    r = await api.post("/os-floating-ips", **kw)
    assert r.status == 200, r.raw
    return r.json["floating_ip"]


async def release_all(api: Api) -> None:
    for fip in (await api.get("/os-floating-ips")).json["floating_ips"]:
        await api.delete(f"/os-floating-ips/{fip['id']}")


def fixed_and_floating(server: dict) -> list[tuple[str, str, str]]:
    return [(net, ip["OS-EXT-IPS:type"], ip["addr"])
            for net, ips in server["addresses"].items() for ip in ips]


async def add(api: Api, sid: str, address: str, **extra: str):
    return await api.post(f"/servers/{sid}/action",
                          json={"addFloatingIp": {"address": address, **extra}})


async def remove(api: Api, sid: str, address: str):
    return await api.post(f"/servers/{sid}/action", json={"removeFloatingIp": {"address": address}})


# --------------------------------------------------------------------------- the resource


async def test_allocate_list_get_deallocate_json(demo: Api, alt: Api) -> None:
    r = await demo.post("/os-floating-ips")          # no body, as 4.4.8.4 shows
    assert r.status == 200, r.raw
    fip = r.json["floating_ip"]
    assert set(fip) == {"id", "ip", "fixed_ip", "instance_id", "pool"}
    assert isinstance(fip["id"], int) and fip["fixed_ip"] is None and fip["instance_id"] is None
    assert ipaddress.IPv4Address(fip["ip"]) in POOL and fip["pool"] == "public"
    named = await allocate(demo, json={"pool": "public"})   # what clients send
    try:
        listed = (await demo.get("/os-floating-ips")).json["floating_ips"]
        assert [f for f in listed if f["id"] in (fip["id"], named["id"])] == [fip, named]
        assert (await demo.get(f"/os-floating-ips/{fip['id']}")).json == {"floating_ip": fip}
        # Another project sees none of it and can touch none of it.
        assert fip["id"] not in [f["id"] for f in (await alt.get("/os-floating-ips")).json[
            "floating_ips"]]
        for r in (await alt.get(f"/os-floating-ips/{fip['id']}"),
                  await alt.delete(f"/os-floating-ips/{fip['id']}")):
            assert r.status == 404 and "itemNotFound" in r.json
        assert (await demo.get(f"/os-floating-ips/{fip['id']}")).status == 200
        r = await demo.get("/limits")
        assert r.json["limits"]["absolute"]["totalFloatingIpsUsed"] == len(listed)
    finally:
        r = await demo.delete(f"/os-floating-ips/{fip['id']}")
        assert r.status == 202 and r.raw == b""
        await demo.delete(f"/os-floating-ips/{named['id']}")
    for r in (await demo.get(f"/os-floating-ips/{fip['id']}"),
              await demo.delete(f"/os-floating-ips/{fip['id']}")):
        assert r.status == 404 and "Floating IP not found" in r.json["itemNotFound"]["message"]
    for bad in ("abc", "0", "-1", "99999999999999999999999"):
        assert (await demo.get(f"/os-floating-ips/{bad}")).status == 404


async def test_floating_ips_in_xml(demo: Api) -> None:
    r = await demo.post("/os-floating-ips", xml=True)
    assert r.status == 200 and r.xml.tag == f"{{{NS}}}floating_ip"
    fid = r.xml.findtext(f"{{{NS}}}id")
    try:
        # As 4.4.8.4: every field a child element, a null as None.
        assert [etree.QName(c).localname for c in r.xml][:4] == [
            "instance_id", "ip", "fixed_ip", "id"]
        assert r.xml.findtext(f"{{{NS}}}instance_id") == "None"
        assert r.xml.findtext(f"{{{NS}}}fixed_ip") == "None"
        ip = r.xml.findtext(f"{{{NS}}}ip")
        r = await demo.get("/os-floating-ips.xml")
        assert r.xml.tag == f"{{{NS}}}floating_ips"
        assert ip in [f.findtext(f"{{{NS}}}ip") for f in r.xml.findall(f"{{{NS}}}floating_ip")]
        r = await demo.get(f"/os-floating-ips/{fid}.xml")
        assert r.xml.findtext(f"{{{NS}}}ip") == ip
        # An XML body naming the pool; an unknown pool is a 404 fault in XML.
        r = await demo.post("/os-floating-ips", xml=True, data="<pool>public</pool>",
                            headers={"Content-Type": "application/xml"})
        assert r.status == 200
        await demo.delete(f"/os-floating-ips/{r.xml.findtext(f'{{{NS}}}id')}")
        r = await demo.post("/os-floating-ips", xml=True, data="<pool>nova</pool>",
                            headers={"Content-Type": "application/xml"})
        assert r.status == 404 and r.xml.tag == f"{{{NS}}}itemNotFound"
        r = await demo.get("/os-floating-ip-pools.xml")
        assert [p.get("name") for p in r.xml] == ["public"]
    finally:
        assert (await demo.delete(f"/os-floating-ips/{fid}.xml")).status == 202


async def test_unknown_pool_and_bad_bodies(demo: Api) -> None:
    r = await demo.post("/os-floating-ips", json={"pool": "nova"})
    assert r.status == 404 and "pool nova not found" in r.json["itemNotFound"]["message"]
    r = await demo.post("/os-floating-ips", json={"pool": 5})
    assert r.status == 400
    r = await demo.post("/os-floating-ips", data="{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert (await demo.get("/os-floating-ip-pools")).json == {
        "floating_ip_pools": [{"name": "public"}]}


async def test_quota_holds_under_30_concurrent_allocations(cloud: Cloud) -> None:
    api, _ = await new_project(cloud, maxTotalFloatingIps=20)
    try:
        results = await asyncio.gather(*(api.post("/os-floating-ips") for _ in range(30)))
        ok = [r.json["floating_ip"] for r in results if r.status == 200]
        over = [r for r in results if r.status != 200]
        assert len(ok) == 20 and len({f["ip"] for f in ok}) == 20
        assert len(over) == 10
        for r in over:
            assert r.status == 413 and r.headers["Retry-After"] == "0"
            assert "Quota exceeded for floating_ips" in r.json["overLimit"]["message"]
        absolute = (await api.get("/limits")).json["limits"]["absolute"]
        assert (absolute["maxTotalFloatingIps"], absolute["totalFloatingIpsUsed"]) == (20, 20)
        r = await api.post("/os-floating-ips", xml=True)
        assert r.status == 413 and etree.QName(r.xml).localname == "overLimit"
        # Giving one back makes room for exactly one.
        await api.delete(f"/os-floating-ips/{ok[0]['id']}")
        assert (await api.post("/os-floating-ips")).status == 200
        assert (await api.post("/os-floating-ips")).status == 413
    finally:
        await release_all(api)
    assert (await api.get("/os-floating-ips")).json == {"floating_ips": []}


# --------------------------------------------------------------------------- on servers


async def test_add_and_remove_show_in_the_servers_addresses(demo: Api, alt: Api) -> None:
    server = await boot_active(demo, "fip")
    sid = server["id"]
    [(net, _, fixed)] = fixed_and_floating(server)
    fip = await allocate(demo)
    try:
        r = await add(demo, sid, fip["ip"])
        assert r.status == 202 and r.raw == b""
        server = await demo.server(sid)
        assert fixed_and_floating(server) == [(net, "fixed", fixed), (net, "floating", fip["ip"])]
        [fixed_ip, floating_ip] = server["addresses"][net]
        assert floating_ip["OS-EXT-IPS-MAC:mac_addr"] == fixed_ip["OS-EXT-IPS-MAC:mac_addr"]
        assert floating_ip["version"] == 4
        got = (await demo.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"]
        assert (got["instance_id"], got["fixed_ip"]) == (sid, fixed)
        assert (await demo.get(f"/servers/{sid}/ips")).json == {"addresses": {net: [
            {"version": 4, "addr": fixed}, {"version": 4, "addr": fip["ip"]}]}}
        # In XML: the floating address under the same network, typed.
        r = await demo.get(f"/servers/{sid}.xml")
        ips = r.xml.findall(f"{{{NS}}}addresses/{{{NS}}}network/{{{NS}}}ip")
        assert [(i.get("addr"), i.get(f"{{{IPS_NS}}}type")) for i in ips] == [
            (fixed, "fixed"), (fip["ip"], "floating")]
        assert ips[1].get(f"{{{MAC_NS}}}mac_addr") == fixed_ip["OS-EXT-IPS-MAC:mac_addr"]
        detail = [s for s in (await demo.get("/servers/detail")).json["servers"]
                  if s["id"] == sid][0]
        assert fixed_and_floating(detail) == fixed_and_floating(server)
        # Adding it again to the same address changes nothing.
        assert (await add(demo, sid, fip["ip"], fixed_address=fixed)).status == 202

        # Faults: another project cannot use the server or the address.
        r = await add(alt, sid, fip["ip"])
        assert r.status == 404
        alt_fip = await allocate(alt)
        try:
            r = await add(demo, sid, alt_fip["ip"])
            assert r.status == 404 and "itemNotFound" in r.json
            r = await remove(demo, sid, alt_fip["ip"])
            assert r.status == 404
        finally:
            await alt.delete(f"/os-floating-ips/{alt_fip['id']}")
        r = await add(demo, sid, "15.126.0.254" if fip["ip"] != "15.126.0.254" else "15.126.0.253")
        assert r.status == 404
        r = await demo.post(f"/servers/{sid}/action", json={"addFloatingIp": {}})
        assert r.status == 400 and "Address not specified" in r.json["badRequest"]["message"]
        r = await add(demo, sid, "not-an-ip")
        assert r.status == 400
        r = await add(demo, sid, fip["ip"], fixed_address="10.255.255.9")
        assert r.status == 400
        assert "not assigned to instance" in r.json["badRequest"]["message"]

        r = await remove(demo, sid, fip["ip"])
        assert r.status == 202
        server = await demo.server(sid)
        assert fixed_and_floating(server) == [(net, "fixed", fixed)]
        got = (await demo.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"]
        assert got["instance_id"] is None and got["fixed_ip"] is None
        r = await remove(demo, sid, fip["ip"])
        assert r.status == 409 and "is not associated" in r.json["conflictingRequest"]["message"]
    finally:
        await demo.delete(f"/os-floating-ips/{fip['id']}")
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)


async def test_actions_in_xml_with_fixed_address(demo: Api) -> None:
    server = await boot_active(demo, "fip-xml")
    sid = server["id"]
    [(net, _, fixed)] = fixed_and_floating(server)
    fip = await allocate(demo)
    try:
        body = (f'<?xml version="1.0" ?><addFloatingIp xmlns="{NS}"><address>\n  {fip["ip"]}\n'
                f'</address><fixed_address>{fixed}</fixed_address></addFloatingIp>')
        r = await demo.post(f"/servers/{sid}/action", data=body, xml=True,
                            headers={"Content-Type": "application/xml"})
        assert r.status == 202, r.raw
        assert (net, "floating", fip["ip"]) in fixed_and_floating(await demo.server(sid))
        body = (f'<?xml version="1.0" ?><removeFloatingIp xmlns="{NS}"><address>{fip["ip"]}'
                f'</address></removeFloatingIp>')
        r = await demo.post(f"/servers/{sid}/action", data=body, xml=True,
                            headers={"Content-Type": "application/xml"})
        assert r.status == 202
        r = await demo.post(f"/servers/{sid}/action", data=body, xml=True,
                            headers={"Content-Type": "application/xml"})
        assert r.status == 409 and etree.QName(r.xml).localname == "conflictingRequest"
    finally:
        await demo.delete(f"/os-floating-ips/{fip['id']}")
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)


def floating_on(server: dict) -> list[str]:
    return [a for _, kind, a in fixed_and_floating(server) if kind == "floating"]


async def test_adding_an_address_on_another_server_moves_it(cloud: Cloud) -> None:
    # The spec is silent; Nova moved it (associate_floating_ip re-assigns the
    # address and refreshes the old server's network info cache).
    api, _ = await new_project(cloud)
    try:
        s1 = (await boot_active(api, "move-1"))["id"]
        s2 = (await boot_active(api, "move-2"))["id"]
        fip = await allocate(api)
        assert (await add(api, s1, fip["ip"])).status == 202
        r = await add(api, s2, fip["ip"])
        assert r.status == 202 and r.raw == b""
        # Both servers show it at once: the move and both caches are one transaction.
        [(net, _, fixed2)] = [a for a in fixed_and_floating(await api.server(s2))
                              if a[1] == "fixed"]
        assert floating_on(await api.server(s2)) == [fip["ip"]]
        assert floating_on(await api.server(s1)) == []
        ips = {sid: (await api.get(f"/servers/{sid}/ips")).json["addresses"][net]
               for sid in (s1, s2)}
        assert fip["ip"] in [i["addr"] for i in ips[s2]]
        assert fip["ip"] not in [i["addr"] for i in ips[s1]]
        detail = {s["id"]: s for s in (await api.get("/servers/detail")).json["servers"]}
        assert (floating_on(detail[s1]), floating_on(detail[s2])) == ([], [fip["ip"]])
        got = (await api.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"]
        assert (got["instance_id"], got["fixed_ip"]) == (s2, fixed2)
        r = await remove(api, s1, fip["ip"])
        assert r.status == 409 and "is not associated" in r.json["conflictingRequest"]["message"]

        # In XML, back to the first server.
        body = (f'<?xml version="1.0" ?><addFloatingIp xmlns="{NS}"><address>{fip["ip"]}'
                f'</address></addFloatingIp>')
        r = await api.post(f"/servers/{s1}/action", data=body, xml=True,
                           headers={"Content-Type": "application/xml"})
        assert r.status == 202 and r.raw == b"", r.raw
        for sid, expected in ((s1, [fip["ip"]]), (s2, [])):
            r = await api.get(f"/servers/{sid}.xml")
            found = [i.get("addr") for i in
                     r.xml.findall(f"{{{NS}}}addresses/{{{NS}}}network/{{{NS}}}ip")
                     if i.get(f"{{{IPS_NS}}}type") == "floating"]
            assert found == expected, sid

        # Racing adds: every one is accepted in its turn; the address ends on
        # exactly one server, and only that server shows it.
        targets = [s1, s2] * 6
        results = await asyncio.gather(*(add(api, s, fip["ip"]) for s in targets))
        assert [r.status for r in results] == [202] * len(targets)
        holder = (await api.get(f"/os-floating-ips/{fip['id']}")).json["floating_ip"][
            "instance_id"]
        assert holder in (s1, s2)
        assert [sid for sid in (s1, s2)
                if fip["ip"] in floating_on(await api.server(sid))] == [holder]
    finally:
        await release_all(api)
        await delete_all(api)


async def test_deallocate_or_server_delete_takes_the_address_off(demo: Api) -> None:
    server = await boot_active(demo, "fip-del")
    sid = server["id"]
    first, second = await allocate(demo), await allocate(demo)
    try:
        for f in (first, second):
            assert (await add(demo, sid, f["ip"])).status == 202
        assert [t for _, t, _ in fixed_and_floating(await demo.server(sid))] == [
            "fixed", "floating", "floating"]
        # Deallocating an associated address disassociates it first.
        assert (await demo.delete(f"/os-floating-ips/{first['id']}")).status == 202
        assert first["ip"] not in [a for _, _, a in fixed_and_floating(await demo.server(sid))]
        # Deleting the server takes the other off; it stays the project's, free to use.
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)

        async def released() -> bool:
            got = (await demo.get(f"/os-floating-ips/{second['id']}")).json["floating_ip"]
            return got["instance_id"] is None and got["fixed_ip"] is None

        await eventually(released)
        other = await boot_active(demo, "fip-next")
        try:
            assert (await add(demo, other["id"], second["ip"])).status == 202
        finally:
            await demo.delete(f"/servers/{other['id']}")
            await demo.wait_status(other["id"], gone)
    finally:
        await demo.delete(f"/os-floating-ips/{first['id']}")
        await demo.delete(f"/os-floating-ips/{second['id']}")


# --------------------------------------------------------------------------- a real client


def _sdk_floating_ip(identity_url: str, server_id: str) -> dict:
    """What the openstack CLI and SDK send without a network service: the cloud layer
    falls back to the compute API's os-floating-ips and server actions."""
    conn = openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")
    out: dict = {}
    fip = conn.create_floating_ip()          # asks os-floating-ip-pools for the pool
    out["address"] = fip["floating_ip_address"]
    conn.compute.add_floating_ip_to_server(server_id, out["address"])
    out["addresses"] = conn.compute.get_server(server_id).addresses
    conn.compute.remove_floating_ip_from_server(server_id, out["address"])
    out["after"] = conn.compute.get_server(server_id).addresses
    conn.delete_floating_ip(fip["id"])
    out["left"] = [f["floating_ip_address"] for f in conn.list_floating_ips()]
    return out


async def test_openstacksdk_allocates_adds_removes_and_deletes(demo: Api, cloud: Cloud) -> None:
    server = await boot_active(demo, "fip-sdk")
    sid = server["id"]
    try:
        out = await asyncio.to_thread(_sdk_floating_ip, cloud.identity_url, sid)
        assert ipaddress.IPv4Address(out["address"]) in POOL
        types = [(ip["addr"], ip["OS-EXT-IPS:type"]) for ips in out["addresses"].values()
                 for ip in ips]
        assert (out["address"], "floating") in types
        assert out["address"] not in [ip["addr"] for ips in out["after"].values() for ip in ips]
        assert out["address"] not in out["left"]
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, gone)
