"""Security groups (sections 2.3.2 and 4.4.11) over HTTP with every service running:
groups and rules in JSON and XML with their faults, the default group, quotas,
servers with groups and the add/remove actions, and project isolation."""

from __future__ import annotations

import asyncio
import uuid

from tests.e2e.client import NS, Api, eventually
from tests.e2e.paging import put
from tests.e2e.projects import delete_all, new_project

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}
DEFAULT_RULES = {("icmp", -1, -1, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")}


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def unique(prefix: str = "sg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_group(api: Api, name: str | None = None, description: str = "a group") -> dict:
    r = await api.post("/os-security-groups",
                       json={"security_group": {"name": name or unique(), "description": description}})
    assert r.status == 202, r.raw
    return r.json["security_group"]


async def make_rule(api: Api, parent: int, **fields) -> dict:
    body = {"parent_group_id": parent, "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
            "cidr": "0.0.0.0/0"} | fields
    r = await api.post("/os-security-group-rules", json={"security_group_rule": body})
    assert r.status == 202, r.raw
    return r.json["security_group_rule"]


def rule_tuples(group: dict) -> set[tuple]:
    return {(r["ip_protocol"], r["from_port"], r["to_port"], r["ip_range"].get("cidr"))
            for r in group["rules"]}


# --------------------------------------------------------------------------- the default group


async def test_a_new_project_lists_its_default_group_before_any_server(cloud):
    api, _ = await new_project(cloud)
    r = await api.get("/os-security-groups")
    assert r.status == 200, r.raw
    (group,) = r.json["security_groups"]
    assert (group["name"], group["description"], group["tenant_id"]) == (
        "default", "default", api.project_id)
    assert isinstance(group["id"], int)
    assert rule_tuples(group) == DEFAULT_RULES
    for rule in group["rules"]:
        assert rule["parent_group_id"] == group["id"] and rule["group"] == {}
    # Listed again: the same group, not a second one.
    again = (await api.get("/os-security-groups")).json["security_groups"]
    assert [g["id"] for g in again] == [group["id"]]
    # Deleting it is refused, in JSON and XML.
    r = await api.delete(f"/os-security-groups/{group['id']}")
    assert r.status == 400
    assert r.json["badRequest"]["message"] == "Unable to delete system group 'default'"
    r = await api.delete(f"/os-security-groups/{group['id']}", xml=True)
    assert r.status == 400 and r.xml.tag == q("badRequest")
    assert (await api.get("/limits")).json["limits"]["absolute"]["totalSecurityGroupsUsed"] == 1


async def test_default_group_in_xml_as_the_spec_shows_it(cloud):
    api, _ = await new_project(cloud)
    r = await api.get("/os-security-groups.xml")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/xml")
    assert r.xml.tag == q("security_groups")
    (group,) = r.xml.findall(q("security_group"))
    assert group.get("name") == "default" and group.get("tenant_id") == api.project_id
    assert group.findtext(q("description")) == "default"
    rules = group.find(q("rules")).findall(q("rule"))
    assert {(x.findtext(q("ip_protocol")), int(x.findtext(q("from_port"))),
             int(x.findtext(q("to_port"))), x.find(q("ip_range")).findtext(q("cidr")))
            for x in rules} == DEFAULT_RULES
    assert all(x.get("parent_group_id") == group.get("id") and x.get("id") for x in rules)
    r = await api.get(f"/os-security-groups/{group.get('id')}", xml=True)
    assert r.status == 200 and r.xml.tag == q("security_group")
    assert r.xml.get("id") == group.get("id")


# --------------------------------------------------------------------------- groups


async def test_create_get_list_delete_json(demo):
    name = unique()
    r = await demo.post("/os-security-groups",
                        json={"security_group": {"name": name, "description": "Security group 1"}})
    assert r.status == 202, r.raw
    made = r.json["security_group"]
    assert made == {"id": made["id"], "name": name, "description": "Security group 1",
                    "tenant_id": demo.project_id, "rules": []}
    r = await demo.get(f"/os-security-groups/{made['id']}")
    assert r.status == 200 and r.json["security_group"] == made
    listed = (await demo.get("/os-security-groups")).json["security_groups"]
    assert made in listed and "default" in {g["name"] for g in listed}

    r = await demo.delete(f"/os-security-groups/{made['id']}")
    assert r.status == 202 and r.raw == b""
    r = await demo.get(f"/os-security-groups/{made['id']}")
    assert r.status == 404
    assert r.json["itemNotFound"]["message"] == f"Security group {made['id']} not found."
    assert (await demo.delete(f"/os-security-groups/{made['id']}")).status == 404
    assert made["id"] not in {g["id"] for g in (await demo.get("/os-security-groups")).json[
        "security_groups"]}


async def test_create_and_delete_xml(demo):
    name = unique()
    body = f"""<?xml version="1.0" ?>
    <security_group name="{name}">
        <description>
            Security group 2
        </description>
    </security_group>"""
    r = await demo.post("/os-security-groups", data=body, headers=XML)
    assert r.status == 202, r.raw
    assert r.xml.tag == q("security_group")
    assert r.xml.get("name") == name and r.xml.get("tenant_id") == demo.project_id
    assert r.xml.findtext(q("description")) == "Security group 2"
    assert r.xml.find(q("rules")) is not None and len(r.xml.find(q("rules"))) == 0
    gid = r.xml.get("id")
    assert (await demo.get(f"/os-security-groups/{gid}")).json["security_group"]["name"] == name
    r = await demo.delete(f"/os-security-groups/{gid}.xml")
    assert r.status == 202
    r = await demo.get(f"/os-security-groups/{gid}.xml")
    assert r.status == 404 and r.xml.tag == q("itemNotFound")


def _bad_properties() -> list[tuple[dict, str]]:
    """Names and descriptions create and update both refuse, with their messages."""
    return [
        ({"security_group": {"description": "no name"}},
         "Security group name is not a string or unicode"),
        ({"security_group": {"name": "   ", "description": "d"}},
         "Security group name has a minimum character requirement of 1."),
        ({"security_group": {"name": "x" * 256, "description": "d"}},
         "Security group name has more than 255 characters."),
        ({"security_group": {"name": unique(), "description": ""}},
         "Security group description has a minimum character requirement of 1."),
        ({"security_group": {"name": unique(), "description": "d" * 256}},
         "Security group description has more than 255 characters."),
        ({"security_group": {"name": "tab\there", "description": "d"}},
         "Security group name must not contain control characters."),
        ({"security_group": {"name": 5, "description": "d"}},
         "Security group name is not a string or unicode"),
    ]


async def test_create_faults(demo):
    taken = await make_group(demo)
    cases = [
        *_bad_properties(),
        ({"security_group": {"name": taken["name"], "description": "again"}},
         f"Security group {taken['name']} already exists"),
        ({"security_group": {"name": "default", "description": "again"}},
         "Security group default already exists"),
    ]
    for body, message in cases:
        r = await demo.post("/os-security-groups", json=body)
        assert r.status == 400, (body, r.raw)
        assert r.json["badRequest"]["message"] == message
    assert (await demo.post("/os-security-groups", json={"name": "x"})).status == 400
    r = await demo.post("/os-security-groups", data='<security_group description="d"/>',
                        headers=XML)
    assert r.status == 400 and r.xml.tag == q("badRequest")
    # The description may be left out (the spec does not require it).
    made = await demo.post("/os-security-groups", json={"security_group": {"name": unique()}})
    assert made.status == 202 and made.json["security_group"]["description"] == ""
    # Ids that are not integers are unknown groups (the CLI looks names up this way).
    for bad in ("web", "1.5", "-3", "99999999999999999999"):
        r = await demo.get(f"/os-security-groups/{bad}")
        assert r.status == 404, bad
        assert (await demo.delete(f"/os-security-groups/{bad}")).status == 404


async def test_group_quota(cloud):
    api, _ = await new_project(cloud, maxSecurityGroups=3)
    await make_group(api)
    await make_group(api)       # with default: 3
    r = await api.post("/os-security-groups",
                       json={"security_group": {"name": unique(), "description": "d"}})
    assert r.status == 413, r.raw
    assert r.json["overLimit"]["message"] == "Quota exceeded, too many security groups."
    assert r.headers["Retry-After"] == "0"
    r = await api.post("/os-security-groups", data=f'<security_group name="{unique()}"/>',
                       headers=XML, xml=True)
    assert r.status == 413 and r.xml.tag == q("overLimit") and r.headers["Retry-After"] == "0"
    absolute = (await api.get("/limits")).json["limits"]["absolute"]
    assert (absolute["maxSecurityGroups"], absolute["totalSecurityGroupsUsed"]) == (3, 3)


async def test_concurrent_creates_stay_within_the_quota(cloud):
    api, _ = await new_project(cloud, maxSecurityGroups=4)
    results = await asyncio.gather(*(api.post("/os-security-groups", json={
        "security_group": {"name": f"race-{i}", "description": "d"}}) for i in range(10)))
    assert sorted(r.status for r in results) == [202] * 3 + [413] * 7
    assert len((await api.get("/os-security-groups")).json["security_groups"]) == 4


# --------------------------------------------------------------------------- rules


async def test_rules_create_show_in_group_and_delete_json(demo):
    group = await make_group(demo)
    # The spec's example body, strings and all.
    r = await demo.post("/os-security-group-rules", json={"security_group_rule": {
        "cidr": "0.0.0.0/0", "from_port": "80", "ip_protocol": "tcp",
        "parent_group_id": str(group["id"]), "to_port": "8080"}})
    assert r.status == 202, r.raw
    rule = r.json["security_group_rule"]
    assert rule == {"id": rule["id"], "parent_group_id": group["id"], "ip_protocol": "tcp",
                    "from_port": 80, "to_port": 8080, "ip_range": {"cidr": "0.0.0.0/0"},
                    "group": {}}
    icmp = await make_rule(demo, group["id"], ip_protocol="ICMP", from_port=-1, to_port=-1,
                           cidr="10.0.0.0/8")
    assert (icmp["ip_protocol"], icmp["ip_range"]) == ("icmp", {"cidr": "10.0.0.0/8"})
    from_group = await make_rule(demo, group["id"], ip_protocol=None, from_port=None,
                                 to_port=None, cidr=None, group_id=group["id"])
    assert from_group["group"] == {"name": group["name"], "tenant_id": demo.project_id}
    assert from_group["ip_range"] == {}
    assert (from_group["ip_protocol"], from_group["from_port"], from_group["to_port"]) == (
        None, None, None)

    shown = (await demo.get(f"/os-security-groups/{group['id']}")).json["security_group"]
    assert shown["rules"] == [rule, icmp, from_group]

    r = await demo.delete(f"/os-security-group-rules/{rule['id']}")
    assert r.status == 202 and r.raw == b""
    r = await demo.delete(f"/os-security-group-rules/{rule['id']}")
    assert r.status == 404
    assert r.json["itemNotFound"]["message"] == f"Security group with rule {rule['id']} not found."
    assert (await demo.delete("/os-security-group-rules/abc")).status == 404
    shown = (await demo.get(f"/os-security-groups/{group['id']}")).json["security_group"]
    assert [x["id"] for x in shown["rules"]] == [icmp["id"], from_group["id"]]


async def test_rules_xml(demo):
    group = await make_group(demo)
    body = f"""<?xml version="1.0" ?>
    <security_group_rule xmlns="http://docs.openstack.org/compute/api/v2">
        <parent_group_id>{group['id']}</parent_group_id>
        <from_port>80</from_port>
        <ip_protocol>tcp</ip_protocol>
        <to_port>8080</to_port>
        <cidr>0.0.0.0/0</cidr>
    </security_group_rule>"""
    r = await demo.post("/os-security-group-rules", data=body, headers=XML)
    assert r.status == 202, r.raw
    assert r.xml.tag == q("security_group_rule")
    assert r.xml.get("parent_group_id") == str(group["id"]) and r.xml.get("id")
    assert (r.xml.findtext(q("from_port")), r.xml.findtext(q("to_port")),
            r.xml.findtext(q("ip_protocol"))) == ("80", "8080", "tcp")
    assert r.xml.find(q("ip_range")).findtext(q("cidr")) == "0.0.0.0/0"
    assert r.xml.find(q("group")) is not None and len(r.xml.find(q("group"))) == 0
    rule_id = r.xml.get("id")
    # A group rule without protocol: the spec's "None" texts.
    r = await demo.post("/os-security-group-rules", headers=XML, data=f"""<security_group_rule>
        <parent_group_id>{group['id']}</parent_group_id><group_id>{group['id']}</group_id>
        </security_group_rule>""")
    assert r.status == 202, r.raw
    assert r.xml.findtext(q("ip_protocol")) == "None" and r.xml.findtext(q("from_port")) == "None"
    assert r.xml.find(q("group")).findtext(q("name")) == group["name"]
    assert r.xml.find(q("group")).findtext(q("tenant_id")) == demo.project_id
    # The duplicate, in XML.
    r = await demo.post("/os-security-group-rules", data=body, headers=XML)
    assert r.status == 400 and r.xml.tag == q("badRequest")
    assert r.xml.findtext(q("message")) == f"This rule already exists in group {group['id']}"
    assert (await demo.delete(f"/os-security-group-rules/{rule_id}.xml")).status == 202
    r = await demo.delete(f"/os-security-group-rules/{rule_id}", xml=True)
    assert r.status == 404 and r.xml.tag == q("itemNotFound")


async def test_rule_faults(demo):
    group = await make_group(demo)
    gid = group["id"]
    await make_rule(demo, gid, from_port=443, to_port=443)
    base = {"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
            "cidr": "0.0.0.0/0"}
    cases = [
        (base | {"from_port": 443, "to_port": 443}, 400, f"This rule already exists in group {gid}"),
        (base | {"ip_protocol": "gre"}, 400, "Invalid IP protocol gre."),
        (base | {"from_port": 0, "to_port": 10}, 400,
         "Invalid port range 0:10. Valid TCP ports should be between 1-65535"),
        (base | {"from_port": 100, "to_port": 10}, 400,
         "Invalid port range 100:10. Former value cannot be greater than the later"),
        (base | {"ip_protocol": "icmp", "from_port": 300, "to_port": 0}, 400,
         "Invalid port range 300:0. For ICMP, the type:code must be valid"),
        (base | {"from_port": "x"}, 400, "To and From ports must be integers"),
        (base | {"cidr": "10.0.0.0/99"}, 400, "Invalid cidr 10.0.0.0/99."),
        (base | {"group_id": gid}, 400, "Give exactly one of cidr and group_id."),
        ({k: v for k, v in base.items() if k != "to_port"}, 400,
         "Not enough parameters to build a valid rule."),
        (base | {"parent_group_id": "abc"}, 400, "Security group id should be integer"),
        (base | {"parent_group_id": 2**40}, 404, f"Security group {2**40} not found."),
        (base | {"cidr": None, "group_id": 2**40}, 404, f"Security group {2**40} not found."),
    ]
    for body, status, message in cases:
        r = await demo.post("/os-security-group-rules", json={"security_group_rule": body})
        assert r.status == status, (body, r.raw)
        fault = "badRequest" if status == 400 else "itemNotFound"
        assert r.json[fault]["message"] == message, body
    r = await demo.post("/os-security-group-rules", headers=XML, xml=True,
                        data=f"<security_group_rule><parent_group_id>{gid}</parent_group_id>"
                             "<ip_protocol>tcp</ip_protocol><from_port>9</from_port>"
                             "<to_port>1</to_port></security_group_rule>")
    assert r.status == 400 and r.xml.tag == q("badRequest")


async def test_rule_quota_is_per_group(cloud):
    api, _ = await new_project(cloud, maxSecurityGroupRules=2)
    group = await make_group(api)
    await make_rule(api, group["id"], from_port=1, to_port=1)
    await make_rule(api, group["id"], from_port=2, to_port=2)
    r = await api.post("/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 3, "to_port": 3,
        "cidr": "0.0.0.0/0"}})
    assert r.status == 413 and r.headers["Retry-After"] == "0"
    assert r.json["overLimit"]["message"] == "Quota exceeded, too many security group rules."
    # Another group has its own allowance.
    other = await make_group(api)
    await make_rule(api, other["id"], from_port=3, to_port=3)


# --------------------------------------------------------------------------- servers


async def test_server_with_groups_and_the_add_remove_actions(demo):
    web = await make_group(demo, unique("web"))
    db = await make_group(demo, unique("db"))
    r = await demo.boot(name="with-groups", security_groups=[{"name": web["name"]},
                                                              {"name": "default"}])
    assert r.status == 202, r.raw
    assert r.json["server"]["security_groups"] == [{"name": web["name"]}, {"name": "default"}]
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    assert server["security_groups"] == [{"name": web["name"]}, {"name": "default"}]

    r = await demo.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": db["name"]}})
    assert r.status == 202 and r.raw == b""
    server = await demo.server(sid)
    assert [g["name"] for g in server["security_groups"]] == [web["name"], "default", db["name"]]
    detail = (await demo.get("/servers/detail")).json["servers"]
    assert [g["name"] for s in detail if s["id"] == sid for g in s["security_groups"]] == [
        web["name"], "default", db["name"]]

    r = await demo.post(f"/servers/{sid}/action", headers=XML, data=f"""<?xml version="1.0" ?>
        <removeSecurityGroup xmlns="http://docs.openstack.org/compute/api/v2">
            <name>{web['name']}</name>
        </removeSecurityGroup>""")
    assert r.status == 202, r.raw
    r = await demo.get(f"/servers/{sid}", xml=True)
    names = [g.get("name") for g in r.xml.find(q("security_groups")).findall(q("security_group"))]
    assert names == ["default", db["name"]]
    r = await demo.post(f"/servers/{sid}/action", headers=XML,
                        data=f"<addSecurityGroup><name>{web['name']}</name></addSecurityGroup>")
    assert r.status == 202, r.raw
    assert [g["name"] for g in (await demo.server(sid))["security_groups"]] == [
        "default", db["name"], web["name"]]

    faults = [
        ({"addSecurityGroup": {"name": db["name"]}}, 400,
         f"Security group {db['name']} is already associated with the instance {sid}"),
        ({"removeSecurityGroup": {"name": "no-such"}}, 404,
         f"Security group no-such not found for project {demo.project_id}."),
        ({"addSecurityGroup": {"name": "no-such"}}, 404,
         f"Security group no-such not found for project {demo.project_id}."),
        ({"addSecurityGroup": {}}, 400, "Security group not specified"),
        ({"addSecurityGroup": {"name": " "}}, 400, "Security group name cannot be empty"),
        ({"removeSecurityGroup": None}, 400, "Missing parameter dict"),
    ]
    for body, status, message in faults:
        r = await demo.post(f"/servers/{sid}/action", json=body)
        assert r.status == status, (body, r.raw)
        fault = "badRequest" if status == 400 else "itemNotFound"
        assert r.json[fault]["message"] == message
    r = await demo.post(f"/servers/{sid}/action", json={"removeSecurityGroup": {"name": "default"}})
    assert r.status == 202
    r = await demo.post(f"/servers/{sid}/action", json={"removeSecurityGroup": {"name": "default"}})
    assert r.status == 400
    assert r.json["badRequest"]["message"] == (
        f"Security group default is not associated with the instance {sid}")
    r = await demo.post(f"/servers/{sid}/action", xml=True, headers=XML,
                        data="<removeSecurityGroup><name>default</name></removeSecurityGroup>")
    assert r.status == 400 and r.xml.tag == q("badRequest")

    # Deleting a group a server has takes it off the server (section 2.3.2).
    r = await demo.delete(f"/os-security-groups/{db['id']}")
    assert r.status == 202, r.raw
    assert [g["name"] for g in (await demo.server(sid))["security_groups"]] == [web["name"]]
    await demo.delete(f"/servers/{sid}")
    await demo.wait_status(sid, lambda s: s is None)
    assert (await demo.post(f"/servers/{sid}/action",
                            json={"addSecurityGroup": {"name": web["name"]}})).status == 404


async def test_create_server_with_groups_in_xml_and_unknown_groups(demo):
    web = await make_group(demo, unique("web"))
    from services.api.catalog import CIRROS_IMAGE_ID
    body = f"""<server xmlns="http://docs.openstack.org/compute/api/v2" name="xml-groups"
        imageRef="{CIRROS_IMAGE_ID}" flavorRef="100">
        <security_groups><security_group name="{web['name']}"/></security_groups></server>"""
    r = await demo.post("/servers", data=body, headers=XML)
    assert r.status == 202, r.raw
    sid = r.xml.get("id")
    groups = r.xml.find(q("security_groups")).findall(q("security_group"))
    assert [g.get("name") for g in groups] == [web["name"]]
    assert (await demo.server(sid))["security_groups"] == [{"name": web["name"]}]

    r = await demo.boot(name="unknown-group", security_groups=[{"name": "no-such-group"}])
    assert r.status == 400
    assert r.json["badRequest"]["message"] == "Unable to find security_group with name 'no-such-group'"
    r = await demo.post("/servers", headers=XML, xml=True, data=body.replace(web["name"], "nope"))
    assert r.status == 400 and r.xml.findtext(q("message")) == (
        "Unable to find security_group with name 'nope'")
    # A deleted group is unknown from then on.
    gone = await make_group(demo)
    assert (await demo.delete(f"/os-security-groups/{gone['id']}")).status == 202
    r = await demo.boot(name="deleted-group", security_groups=[{"name": gone["name"]}])
    assert r.status == 400
    await demo.delete(f"/servers/{sid}")


async def test_server_details_follow_a_group_deleted_while_it_builds(demo):
    group = await make_group(demo)
    r = await demo.boot(name="building", security_groups=[{"name": group["name"]}])
    assert r.status == 202
    sid = r.json["server"]["id"]
    assert (await demo.delete(f"/os-security-groups/{group['id']}")).status == 202
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    assert server["security_groups"] == []
    await demo.delete(f"/servers/{sid}")


async def test_a_server_without_groups_shows_none_and_one_made_without_shows_default(demo):
    from services.api.catalog import CIRROS_IMAGE_ID
    # Made without groups (none named, or an empty list): the default group, in the
    # create answer and after, as Nova's "security_groups or ['default']" did.
    r = await demo.boot(name="no-groups")
    assert r.status == 202 and r.json["server"]["security_groups"] == [{"name": "default"}]
    sid = r.json["server"]["id"]
    r = await demo.boot(name="empty-groups", security_groups=[])
    assert r.status == 202 and r.json["server"]["security_groups"] == [{"name": "default"}]
    empty = r.json["server"]["id"]
    r = await demo.post("/servers", headers=XML, data=(
        f'<server xmlns="{NS}" name="xml-no-groups" imageRef="{CIRROS_IMAGE_ID}" flavorRef="100"/>'))
    assert r.status == 202, r.raw
    xml_sid = r.xml.get("id")
    assert [g.get("name") for g in r.xml.find(q("security_groups"))] == ["default"]
    for server in (sid, empty, xml_sid):
        await demo.wait_status(server, lambda s: s and s["status"] == "ACTIVE")
        assert (await demo.server(server))["security_groups"] == [{"name": "default"}]

    # Its only group removed: none, shown as an empty list, not as a default.
    web = await make_group(demo)
    r = await demo.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": web["name"]}})
    assert r.status == 202, r.raw
    for name in ("default", web["name"]):
        r = await demo.post(f"/servers/{sid}/action", json={"removeSecurityGroup": {"name": name}})
        assert r.status == 202, r.raw
    assert (await demo.server(sid))["security_groups"] == []
    (listed,) = [s for s in (await demo.get("/servers/detail")).json["servers"] if s["id"] == sid]
    assert listed["security_groups"] == []
    r = await demo.get(f"/servers/{sid}", xml=True)
    groups = r.xml.find(q("security_groups"))
    assert groups is not None and len(groups) == 0, r.raw
    r = await demo.get("/servers/detail", xml=True)
    (server,) = [s for s in r.xml if s.get("id") == sid]
    groups = server.find(q("security_groups"))
    assert groups is not None and len(groups) == 0, r.raw
    # And none again: removing default once more is refused as not associated.
    r = await demo.post(f"/servers/{sid}/action", json={"removeSecurityGroup": {"name": "default"}})
    assert r.status == 400, r.raw
    for server in (sid, empty, xml_sid):
        await demo.delete(f"/servers/{server}")
    for server in (sid, empty, xml_sid):
        await demo.wait_status(server, lambda s: s is None)


# --------------------------------------------------------------------------- update (Nova's PUT)


async def test_update_renames_a_group_and_its_servers_show_the_new_name(cloud):
    demo, _ = await new_project(cloud)  # a project of its own: its own group quota
    group = await make_group(demo, unique("web"), "web servers")
    rule = await make_rule(demo, group["id"])
    other = await make_group(demo, unique("app"))
    source = await make_rule(demo, other["id"], cidr=None, group_id=group["id"])
    r = await demo.boot(name="renamed-group", security_groups=[{"name": "default"},
                                                                {"name": group["name"]}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")

    name = unique("frontend")
    r = await put(demo, f"/os-security-groups/{group['id']}",
                  json={"security_group": {"name": f" {name} ", "description": "front end"}})
    assert r.status == 200, r.raw
    updated = r.json["security_group"]
    assert updated == {"id": group["id"], "name": name, "description": "front end",
                       "tenant_id": demo.project_id, "rules": [rule]}
    assert (await demo.get(f"/os-security-groups/{group['id']}")).json["security_group"] == updated
    # The server keeps the group, under its new name, in the same place.
    server = await demo.server(sid)
    assert server["security_groups"] == [{"name": "default"}, {"name": name}]
    detail = (await demo.get("/servers/detail")).json["servers"]
    assert [s["security_groups"] for s in detail if s["id"] == sid] == [
        [{"name": "default"}, {"name": name}]]
    # A rule naming it as its source shows the new name.
    shown = (await demo.get(f"/os-security-groups/{other['id']}")).json["security_group"]
    assert [(x["id"], x["group"]["name"]) for x in shown["rules"]] == [(source["id"], name)]
    # The old name is gone: not on the server, and unknown to the actions and creates.
    r = await demo.post(f"/servers/{sid}/action",
                        json={"removeSecurityGroup": {"name": group["name"]}})
    assert r.status == 404, r.raw
    r = await demo.boot(name="old-name", security_groups=[{"name": group["name"]}])
    assert r.status == 400, r.raw
    r = await demo.post(f"/servers/{sid}/action", json={"removeSecurityGroup": {"name": name}})
    assert r.status == 202, r.raw
    assert (await demo.server(sid))["security_groups"] == [{"name": "default"}]
    # The same update again answers the same; a description left out is kept.
    r = await put(demo, f"/os-security-groups/{group['id']}",
                  json={"security_group": {"name": name, "description": "front end"}})
    assert r.status == 200 and r.json["security_group"] == updated
    r = await put(demo, f"/os-security-groups/{group['id']}",
                  json={"security_group": {"name": group["name"]}})
    assert r.status == 200
    assert (r.json["security_group"]["name"], r.json["security_group"]["description"]) == (
        group["name"], "front end")
    await demo.delete(f"/servers/{sid}")
    await demo.wait_status(sid, lambda s: s is None)


async def test_update_in_xml(cloud):
    demo, _ = await new_project(cloud)
    group = await make_group(demo)
    await make_rule(demo, group["id"], from_port=443, to_port=443)
    name = unique("xml")
    body = f"""<?xml version="1.0" ?>
    <security_group xmlns="http://docs.openstack.org/compute/api/v2" name="{name}">
        <description>
            Renamed in XML
        </description>
    </security_group>"""
    r = await put(demo, f"/os-security-groups/{group['id']}", data=body, headers=XML)
    assert r.status == 200, r.raw
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.xml.tag == q("security_group")
    assert (r.xml.get("id"), r.xml.get("name"), r.xml.get("tenant_id")) == (
        str(group["id"]), name, demo.project_id)
    assert r.xml.findtext(q("description")) == "Renamed in XML"
    (rule,) = r.xml.find(q("rules")).findall(q("rule"))
    assert (rule.findtext(q("from_port")), rule.findtext(q("to_port"))) == ("443", "443")
    shown = (await demo.get(f"/os-security-groups/{group['id']}")).json["security_group"]
    assert (shown["name"], shown["description"]) == (name, "Renamed in XML")
    # A JSON body answered in XML (the .xml suffix), and an XML fault.
    r = await put(demo, f"/os-security-groups/{group['id']}.xml",
                  json={"security_group": {"name": name, "description": "again"}})
    assert r.status == 200 and r.xml.findtext(q("description")) == "again"
    r = await put(demo, f"/os-security-groups/{group['id']}", headers=XML,
                  data='<security_group description="no name"/>')
    assert r.status == 400 and r.xml.tag == q("badRequest")


async def test_update_faults(cloud, alt):
    demo, _ = await new_project(cloud)
    group = await make_group(demo, unique("kept"), "kept as it is")
    taken = await make_group(demo)
    default_id = next(g["id"] for g in (await demo.get("/os-security-groups")).json[
        "security_groups"] if g["name"] == "default")
    path = f"/os-security-groups/{group['id']}"
    cases = [
        *_bad_properties(),
        ({"security_group": "renamed"}, "The request body must hold a 'security_group' object."),
        ({"security_group": {"name": taken["name"], "description": "d"}},
         f"Security group {taken['name']} already exists"),
        ({"security_group": {"name": "default", "description": "d"}},
         "Security group default already exists"),
    ]
    for body, message in cases:
        r = await put(demo, path, json=body)
        assert r.status == 400, (body, r.raw)
        assert r.json["badRequest"]["message"] == message
    assert (await put(demo, path, json={"name": "x"})).status == 400
    # The default group is never updated (Nova's "system group"), in JSON and XML.
    r = await put(demo, f"/os-security-groups/{default_id}",
                  json={"security_group": {"name": unique(), "description": "d"}})
    assert r.status == 400, r.raw
    assert r.json["badRequest"]["message"] == "Unable to update system group 'default'"
    r = await put(demo, f"/os-security-groups/{default_id}", headers=XML,
                  data='<security_group name="mine"><description>d</description></security_group>')
    assert r.status == 400 and r.xml.tag == q("badRequest")
    # Unknown groups, ids that are not integers and another project's group: 404.
    body = {"security_group": {"name": unique(), "description": "d"}}
    for bad in ("999999999", "web", "1.5", "-3", "99999999999999999999"):
        r = await put(demo, f"/os-security-groups/{bad}", json=body)
        assert r.status == 404, (bad, r.raw)
        assert r.json["itemNotFound"]["message"] == f"Security group {bad} not found."
    r = await put(alt, path, json=body)
    assert r.status == 404 and r.json["itemNotFound"]["message"] == (
        f"Security group {group['id']} not found.")
    r = await put(alt, path, json=body, xml=True)
    assert r.status == 404 and r.xml.tag == q("itemNotFound")
    # None of them changed it.
    assert (await demo.get(path)).json["security_group"] == group
    shown = (await demo.get(f"/os-security-groups/{default_id}")).json["security_group"]
    assert (shown["name"], shown["description"]) == ("default", "default")


# --------------------------------------------------------------------------- isolation


async def test_another_projects_groups_and_rules_are_not_found(demo, alt):
    group = await make_group(demo, unique("private"))
    rule = await make_rule(demo, group["id"])
    gid, rid = group["id"], rule["id"]

    r = await alt.get(f"/os-security-groups/{gid}")
    assert r.status == 404
    assert gid not in {g["id"] for g in (await alt.get("/os-security-groups")).json[
        "security_groups"]}
    assert (await alt.delete(f"/os-security-groups/{gid}")).status == 404
    assert (await alt.delete(f"/os-security-group-rules/{rid}")).status == 404
    r = await alt.post("/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 1, "to_port": 2,
        "cidr": "0.0.0.0/0"}})
    assert r.status == 404
    alt_group = await make_group(alt)
    r = await alt.post("/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": alt_group["id"], "ip_protocol": "tcp", "from_port": 1, "to_port": 2,
        "group_id": gid}})
    assert r.status == 404
    # Its name is unknown to the other project's servers.
    r = await alt.boot(name="borrow", security_groups=[{"name": group["name"]}])
    assert r.status == 400
    assert r.json["badRequest"]["message"] == (
        f"Unable to find security_group with name '{group['name']}'")
    r = await alt.boot(name="alt-server")
    assert r.status == 202
    sid = r.json["server"]["id"]
    r = await alt.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": group["name"]}})
    assert r.status == 404
    # Nor can the owner act on another project's server.
    r = await demo.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": group["name"]}})
    assert r.status == 404

    # Everything of demo's is intact.
    shown = (await demo.get(f"/os-security-groups/{gid}")).json["security_group"]
    assert [x["id"] for x in shown["rules"]] == [rid]
    await alt.delete(f"/servers/{sid}")
    await alt.wait_status(sid, lambda s: s is None)


async def test_groups_of_a_project_with_servers_then_cleanup(cloud):
    """What the openstack CLI does: group, rule, server with the group, add, cleanup."""
    api, _ = await new_project(cloud)
    group = await make_group(api, "cli-web", "cli-web")
    # The CLI's name lookup: GET by name is 404, then the list.
    assert (await api.get("/os-security-groups/cli-web")).status == 404
    found = [g for g in (await api.get("/os-security-groups")).json["security_groups"]
             if g["name"] == "cli-web"]
    assert [g["id"] for g in found] == [group["id"]]
    # openstackclient sends every field, null where not given.
    r = await api.post("/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "0.0.0.0/0", "group_id": None}})
    assert r.status == 202, r.raw
    r = await api.boot(name="cli-server")
    sid = r.json["server"]["id"]
    await api.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    r = await api.post(f"/servers/{sid}/action", json={"addSecurityGroup": {"name": "cli-web"}})
    assert r.status == 202

    async def listed():
        server = await api.server(sid)
        return server and {g["name"] for g in server["security_groups"]} == {"default", "cli-web"}
    await eventually(listed)
    await delete_all(api)
    await api.wait_status(sid, lambda s: s is None)
    assert (await api.delete(f"/os-security-groups/{group['id']}")).status == 202
