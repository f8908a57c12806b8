"""os-networks and os-tenant-networks (the project's networks as Nova's proxies
showed them), and server create naming a security group by its id."""

from __future__ import annotations

import ipaddress
import uuid

from tests.e2e.client import NS
from tests.e2e.projects import new_project


async def _project_with_network(cloud):
    api, _ = await new_project(cloud)
    r = await api.boot(name="net")  # a project's network is made on first use
    await api.wait_status(r.json["server"]["id"], lambda s: s and s["status"] == "ACTIVE")
    return api


async def test_networks_are_the_projects_own(cloud, alt):
    api = await _project_with_network(cloud)
    conn = await cloud.db()
    try:
        rows = await conn.fetch("SELECT id, name, cidr::text AS cidr, host(gateway) AS gw "
                                "FROM networks WHERE project_id = $1", api.project_id)
    finally:
        await conn.close()
    (row,) = rows
    (net,) = (await api.get("/os-networks")).json["networks"]
    cidr = ipaddress.ip_network(row["cidr"])
    assert (net["id"], net["label"], net["cidr"], net["gateway"]) == (
        str(row["id"]), row["name"], row["cidr"], row["gw"])
    assert (net["netmask"], net["broadcast"]) == (str(cidr.netmask), str(cidr.broadcast_address))
    assert "project_id" not in net  # an admin field
    shown = (await api.get(f"/os-networks/{row['id']}")).json["network"]
    assert shown == net
    assert (await api.get("/os-tenant-networks")).json["networks"] == [
        {"id": str(row["id"]), "label": row["name"], "cidr": row["cidr"]}]
    assert (await api.get(f"/os-tenant-networks/{row['id']}")).json["network"]["label"] == \
        row["name"]
    # Another project's network, an unknown or malformed id: 404.
    for path in (f"/os-networks/{row['id']}", f"/os-tenant-networks/{row['id']}",
                 f"/os-networks/{uuid.uuid4()}", "/os-networks/not-a-uuid"):
        r = await alt.get(path)
        assert r.status == 404 and r.json["itemNotFound"]["message"] == "Network not found"
    assert str(row["id"]) not in {n["id"] for n in (await alt.get("/os-networks")).json["networks"]}

    r = await api.get(f"/os-networks/{row['id']}", xml=True)
    assert r.xml.tag == f"{{{NS}}}network" and r.xml.get("label") == row["name"]
    r = await api.get("/os-tenant-networks", xml=True)
    assert [n.get("cidr") for n in r.xml.findall(f"{{{NS}}}network")] == [row["cidr"]]


async def test_making_networks_is_not_implemented(cloud, demo):
    body = {"network": {"label": "x", "cidr": "10.99.0.0/24"}}
    r = await demo.post("/os-tenant-networks", json=body)
    assert r.status == 501 and "notImplemented" in r.json
    assert (await demo.post("/os-networks", json=body)).status == 403  # admin only, as Nova
    admin = await cloud.login("admin", "admin", "admin")
    assert (await admin.post("/os-networks", json=body)).status == 501


async def test_server_create_takes_a_security_groups_id(cloud, alt):
    api, _ = await new_project(cloud)

    async def group(name):
        r = await api.post("/os-security-groups",
                           json={"security_group": {"name": name, "description": "d"}})
        assert r.status in (200, 202), r.raw
        return r.json["security_group"]
    web = await group("web")
    r = await api.boot(name="by-id", security_groups=[{"name": str(web["id"])}])
    assert r.status == 202, r.raw
    assert r.json["server"]["security_groups"] == [{"name": "web"}]
    sid = r.json["server"]["id"]
    server, _ = await api.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    assert server["security_groups"] == [{"name": "web"}]

    # The add and remove actions take an id too (`openstack server add security group`).
    db = await group("db")
    r = await api.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": str(db["id"])}})
    assert r.status == 202, r.raw
    assert [g["name"] for g in (await api.server(sid))["security_groups"]] == ["web", "db"]
    r = await api.post(f"/servers/{sid}/action",
                       json={"removeSecurityGroup": {"name": str(web["id"])}})
    assert r.status == 202, r.raw
    assert [g["name"] for g in (await api.server(sid))["security_groups"]] == ["db"]

    # A name made of digits is a name first.
    digits = await group(str(web["id"]))
    r = await api.boot(name="by-name", security_groups=[{"name": str(web["id"])}])
    assert r.status == 202, r.raw
    assert r.json["server"]["security_groups"] == [{"name": digits["name"]}]

    # Another project's group id is unknown here.
    theirs = (await alt.get("/os-security-groups")).json["security_groups"][0]
    r = await api.boot(name="theirs", security_groups=[{"name": str(theirs["id"])}])
    assert r.status == 400 and str(theirs["id"]) in r.json["badRequest"]["message"]
