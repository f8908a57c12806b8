"""Response rendering: each view in JSON and in the XML the spec shows."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from services.api.representation import NETWORK_ADDRESSES, View, render, respond
from services.api.representation.xml_rules import EXTENSION_NAMESPACES
from tests.unit.api.xmlcompare import assert_xml_equal, parse

V2 = "http://docs.openstack.org/compute/api/v2"
COMMON = "http://docs.openstack.org/common/api/v1.0"
ATOM = "http://www.w3.org/2005/Atom"
NS = f'xmlns="{V2}" xmlns:atom="{ATOM}"'
BASE = "http://region-b.geo-1.compute.hpcloudsvc.com"
SID = "94166e08-57a1-4910-b529-120650e8887e"
IMG = "8c096c29-a666-4b82-99c4-c77dc70cfb40"


def xml(body: dict, **kwargs) -> bytes:
    payload, content_type = render(body, "xml", **kwargs)
    assert content_type == "application/xml; charset=UTF-8"
    assert payload.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return payload


def links(path: str) -> list[dict]:
    return [
        {"href": f"{BASE}/v2/10979209027984/{path}", "rel": "self"},
        {"href": f"{BASE}/10979209027984/{path}", "rel": "bookmark"},
    ]


def xml_links(path: str) -> str:
    return (
        f'<atom:link href="{BASE}/v2/10979209027984/{path}" rel="self"/>'
        f'<atom:link href="{BASE}/10979209027984/{path}" rel="bookmark"/>'
    )


def server_detail() -> dict:
    """Get Server Details, section 4.4.1.8."""
    return {
        "status": "ACTIVE",
        "updated": "2014-04-15T18:39:02Z",
        "hostId": "8aaf385a8ce67ee589d48122901621affa53ad6504ee6bbac74b30e5",
        "addresses": {
            "CloudHorizonNetwork": [
                {
                    "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:32:1a:2c",
                    "version": 4,
                    "addr": "10.0.0.7",
                    "OS-EXT-IPS:type": "fixed",
                }
            ]
        },
        "links": links(f"servers/{SID}"),
        "key_name": "USEast",
        "image": {
            "id": IMG,
            "links": [{"href": f"{BASE}/10979209027984/images/{IMG}", "rel": "bookmark"}],
        },
        "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": "active",
        "flavor": {
            "id": "100",
            "links": [{"href": f"{BASE}/10979209027984/flavors/100", "rel": "bookmark"}],
        },
        "id": SID,
        "security_groups": [{"name": "default"}],
        "OS-EXT-AZ:availability_zone": "az2",
        "user_id": "52552375567809",
        "name": "InstanceTest",
        "created": "2014-04-15T18:38:47Z",
        "tenant_id": "10979209027984",
        "accessIPv4": "",
        "accessIPv6": "",
        "progress": 0,
        "OS-EXT-STS:power_state": 1,
        "config_drive": "",
        "metadata": {"key-1": "value-1"},
    }


SERVER_DETAIL_XML = f"""
<server {NS}
    xmlns:OS-EXT-STS="{EXTENSION_NAMESPACES['OS-EXT-STS']}"
    xmlns:OS-EXT-AZ="{EXTENSION_NAMESPACES['OS-EXT-AZ']}"
    xmlns:OS-EXT-IPS="{EXTENSION_NAMESPACES['OS-EXT-IPS']}"
    xmlns:OS-EXT-IPS-MAC="{EXTENSION_NAMESPACES['OS-EXT-IPS-MAC']}"
    status="ACTIVE" updated="2014-04-15T18:39:02Z"
    hostId="8aaf385a8ce67ee589d48122901621affa53ad6504ee6bbac74b30e5" name="InstanceTest"
    created="2014-04-15T18:38:47Z" userId="52552375567809" tenantId="10979209027984"
    accessIPv4="" accessIPv6="" progress="0" id="{SID}" key_name="USEast" config_drive=""
    OS-EXT-STS:vm_state="active" OS-EXT-STS:task_state="None" OS-EXT-STS:power_state="1"
    OS-EXT-AZ:availability_zone="az2">
    <image id="{IMG}">
        <atom:link href="{BASE}/10979209027984/images/{IMG}" rel="bookmark" />
    </image>
    <flavor id="100">
        <atom:link href="{BASE}/10979209027984/flavors/100" rel="bookmark" />
    </flavor>
    <metadata>
        <meta key="key-1">value-1</meta>
    </metadata>
    <addresses>
    <network id="CloudHorizonNetwork">
        <ip OS-EXT-IPS:type="fixed" version="4" addr="10.0.0.7" OS-EXT-IPS-MAC:mac_addr="fa:16:3e:32:1a:2c" />
    </network>
    </addresses>
    {xml_links(f"servers/{SID}")}
    <security_groups>
        <security_group name="default" />
    </security_groups>
</server>
"""


def test_server_detail_xml() -> None:
    payload = xml({"server": server_detail()})
    assert_xml_equal(payload, SERVER_DETAIL_XML)
    root = parse(payload)
    # Extension prefixes are declared once, on the root, with the spec's names.
    assert root.nsmap["OS-EXT-STS"] == EXTENSION_NAMESPACES["OS-EXT-STS"]
    assert root.nsmap[None] == V2 and root.nsmap["atom"] == ATOM
    assert b"ns0:" not in payload
    assert payload.count(b"xmlns:OS-EXT-IPS=") == 1


def test_server_detail_json() -> None:
    payload, content_type = render({"server": server_detail()}, "json")
    assert content_type == "application/json"
    decoded = msgspec.json.decode(payload)
    assert decoded == {"server": server_detail()}
    assert decoded["server"]["OS-EXT-STS:task_state"] is None


def test_server_list_detail_xml_hoists_namespaces_and_keeps_pagination_links() -> None:
    second = server_detail() | {"id": "s2", "links": links("servers/s2")}
    body = {
        "servers": [server_detail(), second],
        "servers_links": [{"href": f"{BASE}/v2/p/servers/detail?marker=s2", "rel": "next"}],
    }
    payload = xml(body)
    root = parse(payload)
    assert root.tag == f"{{{V2}}}servers"
    assert [s.get("id") for s in root.findall(f"{{{V2}}}server")] == [SID, "s2"]
    assert payload.count(b"xmlns:OS-EXT-STS=") == 1
    (next_link,) = root.findall(f"{{{ATOM}}}link")
    assert next_link.get("rel") == "next"
    first = root.find(f"{{{V2}}}server")
    assert first.get(f"{{{EXTENSION_NAMESPACES['OS-EXT-STS']}}}vm_state") == "active"
    assert first.get("userId") == "52552375567809"
    assert first.get("user_id") is None


def test_prefix_first_seen_in_a_later_item_is_still_declared_once_on_the_root() -> None:
    body = {"servers": [{"id": "a", "addresses": {}},
                        {"id": "b", "OS-EXT-STS:vm_state": "active",
                         "addresses": {"n": [{"addr": "10.0.0.3", "OS-EXT-IPS:type": "fixed"}]}},
                        {"id": "c", "OS-EXT-STS:vm_state": "error"}]}
    payload = xml(body)
    assert b"ns0" not in payload
    assert payload.count(b"xmlns:OS-EXT-STS=") == 1
    assert payload.count(b"xmlns:OS-EXT-IPS=") == 1
    root = parse(payload)
    assert root.nsmap["OS-EXT-STS"] == EXTENSION_NAMESPACES["OS-EXT-STS"]
    sts = f"{{{EXTENSION_NAMESPACES['OS-EXT-STS']}}}vm_state"
    assert [s.get(sts) for s in root] == [None, "active", "error"]
    ip = root[1].find(f"{{{V2}}}addresses/{{{V2}}}network/{{{V2}}}ip")
    assert ip.get(f"{{{EXTENSION_NAMESPACES['OS-EXT-IPS']}}}type") == "fixed"


def test_server_list_xml() -> None:
    """List Servers, section 4.4.1.5 (and 3.5)."""
    body = {"servers": [{"id": "abc", "links": links("servers/abc"), "name": "Instance_Test"}]}
    assert_xml_equal(
        xml(body),
        f'<servers {NS}><server name="Instance_Test" id="abc">{xml_links("servers/abc")}</server></servers>',
    )
    assert_xml_equal(xml({"servers": []}), f"<servers {NS}/>")


def test_server_create_response_xml() -> None:
    body = {
        "server": {
            "security_groups": [{"name": "default"}],
            "id": "bc65",
            "links": links("servers/bc65"),
            "adminPass": "bvTHj8wLuom5",
        }
    }
    assert_xml_equal(
        xml(body),
        f"""<server {NS} id="bc65" adminPass="bvTHj8wLuom5">{xml_links("servers/bc65")}
        <security_groups><security_group name="default"/></security_groups></server>""",
    )


def test_server_fault_is_nested_element_with_text_children() -> None:
    body = {"server": {"id": "x", "status": "ERROR", "fault": {
        "code": 500, "created": "2014-04-15T18:39:02Z", "message": "No valid host was found.",
        "details": None}}}
    assert_xml_equal(
        xml(body),
        f"""<server {NS} id="x" status="ERROR"><fault code="500" created="2014-04-15T18:39:02Z">
        <message>No valid host was found.</message></fault></server>""",
    )


def flavor() -> dict:
    return {
        "name": "standard.xsmall",
        "links": links("flavors/100"),
        "ram": 1024,
        "vcpus": 1,
        "swap": "",
        "rxtx_factor": 1.0,
        "OS-FLV-EXT-DATA:ephemeral": 10,
        "disk": 10,
        "id": "100",
    }


def test_flavor_xml() -> None:
    """Get Flavor Details, section 4.4.1.34 (+ 4.4.7 for the namespace)."""
    ns = EXTENSION_NAMESPACES["OS-FLV-EXT-DATA"]
    assert_xml_equal(
        xml({"flavor": flavor()}),
        f"""<flavor {NS} xmlns:OS-FLV-EXT-DATA="{ns}" disk="10" vcpus="1" ram="1024"
        name="standard.xsmall" id="100" swap="" rxtx_factor="1.0" OS-FLV-EXT-DATA:ephemeral="10">
        {xml_links("flavors/100")}</flavor>""",
    )
    flavors = parse(xml({"flavors": [flavor(), flavor() | {"id": "101"}]}))
    assert flavors.tag == f"{{{V2}}}flavors"
    assert [f.get("id") for f in flavors] == ["100", "101"]


def test_atom_and_declared_prefixes_survive_namespace_hoisting() -> None:
    # Extension prefixes trigger the hoisting pass; xmlns:atom is still declared
    # on the root (as in every spec example) even with no link to use it.
    root = parse(xml({"flavor": {"id": "1", "OS-FLV-EXT-DATA:ephemeral": 0}}))
    assert root.nsmap == {
        None: V2, "atom": ATOM, "OS-FLV-EXT-DATA": EXTENSION_NAMESPACES["OS-FLV-EXT-DATA"]}
    limits = parse(xml({"limits": {"absolute": {}, "X-EXT:used": 1}}))
    assert limits.nsmap["os-used-limits"] == EXTENSION_NAMESPACES["os-used-limits"]
    assert limits.nsmap["atom"] == ATOM


def test_flavor_json() -> None:
    payload, _ = render({"flavor": flavor()}, "json")
    assert msgspec.json.decode(payload)["flavor"]["OS-FLV-EXT-DATA:ephemeral"] == 10


def image() -> dict:
    return {
        "status": "ACTIVE",
        "updated": "2014-04-14T14:26:41Z",
        "links": links(f"images/{IMG}") + [{
            "href": f"https://images.example/10979209027984/images/{IMG}",
            "type": "application/vnd.openstack.image",
            "rel": "alternate",
        }],
        "id": IMG,
        "OS-EXT-IMG-SIZE:size": 260178432,
        "name": "Ubuntu Server 12.04.4 LTS (amd64 20140408) - Partner Image",
        "created": "2014-04-09T14:24:23Z",
        "minDisk": 8,
        "progress": 100,
        "minRam": 0,
        "metadata": {"com.ubuntu.cloud__1__milestone": "release", "os_type": "linux-ext4",
                     "architecture": "x86_64"},
    }


def test_image_with_metadata_xml() -> None:
    """Get Image Details, section 4.4.1.24."""
    ns = EXTENSION_NAMESPACES["OS-EXT-IMG-SIZE"]
    assert_xml_equal(
        xml({"image": image()}),
        f"""<image {NS} xmlns:OS-EXT-IMG-SIZE="{ns}" status="ACTIVE" updated="2014-04-14T14:26:41Z"
        name="Ubuntu Server 12.04.4 LTS (amd64 20140408) - Partner Image" created="2014-04-09T14:24:23Z"
        minDisk="8" progress="100" minRam="0" id="{IMG}" OS-EXT-IMG-SIZE:size="260178432">
        <metadata>
            <meta key="com.ubuntu.cloud__1__milestone">release</meta>
            <meta key="os_type">linux-ext4</meta>
            <meta key="architecture">x86_64</meta>
        </metadata>
        {xml_links(f"images/{IMG}")}
        <atom:link href="https://images.example/10979209027984/images/{IMG}"
            type="application/vnd.openstack.image" rel="alternate" />
        </image>""",
    )


def test_image_json() -> None:
    payload, _ = render({"image": image()}, "json")
    assert msgspec.json.decode(payload) == {"image": image()}


def test_metadata_and_meta_item_xml() -> None:
    """Sections 4.4.1.11 and 4.4.1.14."""
    assert_xml_equal(
        xml({"metadata": {"key-1": "value-1", "key-2": "value-2"}}),
        f'<metadata {NS}><meta key="key-1">value-1</meta><meta key="key-2">value-2</meta></metadata>',
    )
    assert_xml_equal(xml({"metadata": {}}), f"<metadata {NS}/>")
    assert_xml_equal(xml({"meta": {"key-1": "value-1"}}), f'<meta {NS} key="key-1">value-1</meta>')


def test_addresses_and_network_addresses_xml() -> None:
    """Sections 4.4.1.20 and 4.4.1.21 (the latter needs the shape hint)."""
    ips = [{"version": 4, "addr": "10.0.0.20"}]
    assert_xml_equal(
        xml({"addresses": {"CloudHorizonNetwork": ips}}),
        f'<addresses {NS}><network id="CloudHorizonNetwork"><ip version="4" addr="10.0.0.20"/></network></addresses>',
    )
    assert_xml_equal(
        xml({"CloudHorizonNetwork": ips}, shape=NETWORK_ADDRESSES),
        f'<network {NS} id="CloudHorizonNetwork"><ip version="4" addr="10.0.0.20"/></network>',
    )
    payload, _ = render({"CloudHorizonNetwork": ips}, "json", shape=NETWORK_ADDRESSES)
    assert msgspec.json.decode(payload) == {"CloudHorizonNetwork": ips}


VERSION = {
    "id": "v2.0",
    "links": [
        {"href": "http://127.0.0.1:8774/v2/", "rel": "self"},
        {"href": "http://docs.openstack.org/api/openstack-compute/2/os-compute-devguide-2.pdf",
         "rel": "describedby", "type": "application/pdf"},
    ],
    "media-types": [
        {"base": "application/xml", "type": "application/vnd.openstack.compute+xml;version=2"},
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"},
    ],
    "status": "CURRENT",
    "updated": "2011-01-21T11:33:21Z",
    "version": "",
    "min_version": "",
}


def test_version_document_xml_uses_common_namespace() -> None:
    """Section 4.4.1.1."""
    assert_xml_equal(
        xml({"version": VERSION}),
        f"""<version xmlns="{COMMON}" xmlns:atom="{ATOM}" status="CURRENT" updated="2011-01-21T11:33:21Z"
            id="v2.0" version="" min_version="">
            <media-types>
                <media-type base="application/xml" type="application/vnd.openstack.compute+xml;version=2" />
                <media-type base="application/json" type="application/vnd.openstack.compute+json;version=2" />
            </media-types>
            <atom:link href="http://127.0.0.1:8774/v2/" rel="self" />
            <atom:link href="http://docs.openstack.org/api/openstack-compute/2/os-compute-devguide-2.pdf"
                type="application/pdf" rel="describedby" />
        </version>""",
    )


def test_versions_list_xml() -> None:
    body = {"versions": [{"id": "v2.0", "status": "CURRENT", "updated": "2011-01-21T11:33:21Z",
                          "links": [{"href": "http://127.0.0.1:8774/v2/", "rel": "self"}]}]}
    assert_xml_equal(
        xml(body),
        f"""<versions xmlns="{COMMON}" xmlns:atom="{ATOM}"><version id="v2.0" status="CURRENT"
        updated="2011-01-21T11:33:21Z"><atom:link href="http://127.0.0.1:8774/v2/" rel="self"/>
        </version></versions>""",
    )


EXTENSION = {
    "updated": "2011-12-08T00:00:00+00:00",
    "name": "ConsoleOutput",
    "links": [],
    "namespace": "http://docs.openstack.org/compute/ext/os-console-output/api/v2",
    "alias": "os-console-output",
    "description": "Console log output support, with tailing ability.",
}
EXTENSION_XML = """<extension alias="os-console-output" updated="2011-12-08T00:00:00+00:00"
    namespace="http://docs.openstack.org/compute/ext/os-console-output/api/v2" name="ConsoleOutput">
    <description>Console log output support, with tailing ability.</description>
</extension>"""


def test_extension_xml() -> None:
    """Sections 4.4.1.2 and 4.4.1.3."""
    ns = f'xmlns="{COMMON}" xmlns:atom="{ATOM}"'
    assert_xml_equal(xml({"extension": EXTENSION}), EXTENSION_XML.replace("<extension ", f"<extension {ns} ", 1))
    inner = EXTENSION_XML.replace("<extension ", f'<extension xmlns="{COMMON}" ', 1)
    assert_xml_equal(xml({"extensions": [EXTENSION]}), f"<extensions {ns}>{inner}</extensions>")


def test_extension_json() -> None:
    payload, _ = render({"extensions": [EXTENSION]}, "json")
    assert msgspec.json.decode(payload) == {"extensions": [EXTENSION]}


def test_limits_xml() -> None:
    """Sections 4.4.1.4 and 4.4.12, with Nova's rate-limit shape."""
    body = {"limits": {
        "rate": [{"uri": "*", "regex": ".*", "limit": [
            {"value": 10, "verb": "POST", "remaining": 2, "unit": "MINUTE",
             "next-available": "2011-12-15T22:42:45Z"}]}],
        "absolute": {"maxServerMeta": 50, "maxTotalCores": -1, "totalRAMUsed": 2048},
    }}
    used = EXTENSION_NAMESPACES["os-used-limits"]
    assert_xml_equal(
        xml(body),
        f"""<limits xmlns="{COMMON}" xmlns:atom="{ATOM}" xmlns:os-used-limits="{used}">
        <rates><rate uri="*" regex=".*">
            <limit value="10" verb="POST" remaining="2" unit="MINUTE" next-available="2011-12-15T22:42:45Z"/>
        </rate></rates>
        <absolute>
            <limit name="maxServerMeta" value="50" />
            <limit name="maxTotalCores" value="-1" />
            <limit name="totalRAMUsed" value="2048" />
        </absolute></limits>""",
    )
    empty = parse(xml({"limits": {"rate": [], "absolute": {}}}))
    assert [child.tag for child in empty] == [f"{{{COMMON}}}rates", f"{{{COMMON}}}absolute"]
    assert empty.nsmap["os-used-limits"] == used


def test_availability_zones_xml() -> None:
    """Section 4.4.2.1."""
    body = {"availabilityZoneInfo": [
        {"zoneState": {"available": True}, "hosts": None, "zoneName": "az2"},
        {"zoneState": {"available": False}, "hosts": None, "zoneName": "az1"},
    ]}
    assert_xml_equal(
        xml(body),
        f"""<availabilityZones {NS}>
            <availabilityZone name="az2"><zoneState available="True" /><metadata /></availabilityZone>
            <availabilityZone name="az1"><zoneState available="False" /><metadata /></availabilityZone>
        </availabilityZones>""",
    )


def test_floating_ips_xml_fields_are_text_children() -> None:
    """Sections 4.4.8.3 and 4.4.8.5."""
    ip = {"fixed_ip": None, "id": 980, "instance_id": None, "ip": "15.185.227.211"}
    one = """<floating_ip><instance_id>None</instance_id><ip>15.185.227.211</ip>
        <fixed_ip>None</fixed_ip><id>980</id></floating_ip>"""
    assert_xml_equal(xml({"floating_ip": ip}), one.replace("<floating_ip>", f"<floating_ip {NS}>", 1))
    assert_xml_equal(xml({"floating_ips": [ip]}), f"<floating_ips {NS}>{one}</floating_ips>")


def test_keypairs_xml() -> None:
    """Sections 4.4.9.1 and 4.4.9.2."""
    pair = {"fingerprint": "57:64", "name": "key.pub", "public_key": "ssh-rsa AAAA x@y\n"}
    assert_xml_equal(
        xml({"keypairs": [{"keypair": pair}]}),
        f"""<keypairs {NS}><keypair><keypair><public_key>ssh-rsa AAAA x@y</public_key>
        <name>key.pub</name><fingerprint>57:64</fingerprint></keypair></keypair></keypairs>""",
    )
    created = pair | {"private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIC\n", "user_id": "1331"}
    root = parse(xml({"keypair": created}))
    assert root.attrib == {}
    assert root.findtext(f"{{{V2}}}private_key") == created["private_key"]
    assert root.findtext(f"{{{V2}}}user_id") == "1331"


SECURITY_GROUP = {
    "description": "default",
    "id": 12091,
    "name": "default",
    "rules": [
        {"from_port": 22, "group": {}, "id": 31701, "ip_protocol": "tcp",
         "ip_range": {"cidr": "0.0.0.0/0"}, "parent_group_id": 12091, "to_port": 22},
        {"from_port": None, "group": {"name": "default", "tenant_id": "3699"}, "id": 31705,
         "ip_protocol": None, "ip_range": {}, "parent_group_id": 12091, "to_port": None},
    ],
    "tenant_id": "3699",
}
SECURITY_GROUP_XML = """<security_group id="12091" name="default" tenant_id="3699">
    <rules>
        <rule id="31701" parent_group_id="12091">
            <from_port>22</from_port><group/><ip_protocol>tcp</ip_protocol><to_port>22</to_port>
            <ip_range><cidr>0.0.0.0/0</cidr></ip_range>
        </rule>
        <rule id="31705" parent_group_id="12091">
            <from_port>None</from_port>
            <group><tenant_id>3699</tenant_id><name>default</name></group>
            <ip_protocol>None</ip_protocol><to_port>None</to_port><ip_range/>
        </rule>
    </rules>
    <description>default</description>
</security_group>"""


def test_security_groups_xml() -> None:
    """Sections 4.4.11.5, 4.4.11.7 and 4.4.11.9."""
    assert_xml_equal(
        xml({"security_groups": [SECURITY_GROUP, SECURITY_GROUP | {"id": 2, "rules": []}]}),
        f"""<security_groups {NS}>{SECURITY_GROUP_XML}
        <security_group id="2" name="default" tenant_id="3699"><rules/><description>default</description>
        </security_group></security_groups>""",
    )
    rule = SECURITY_GROUP["rules"][0]
    assert_xml_equal(
        xml({"security_group_rule": rule}),
        f"""<security_group_rule {NS} id="31701" parent_group_id="12091"><from_port>22</from_port>
        <group/><ip_protocol>tcp</ip_protocol><to_port>22</to_port>
        <ip_range><cidr>0.0.0.0/0</cidr></ip_range></security_group_rule>""",
    )


def test_volumes_and_attachments_xml() -> None:
    """Sections 4.4.13.1 and 4.4.13.12."""
    volume = {
        "attachments": [{}],
        "availabilityZone": "az2",
        "createdAt": "2013-05-20T13:21:37.000000",
        "displayDescription": None,
        "displayName": None,
        "id": "cfe5",
        "metadata": {},
        "size": 30,
        "snapshotId": None,
        "status": "available",
        "volumeType": "None",
    }
    assert_xml_equal(
        xml({"volumes": [volume]}),
        f"""<volumes {NS}><volume availabilityZone="az2" createdAt="2013-05-20T13:21:37.000000"
        displayDescription="None" displayName="None" id="cfe5" size="30" snapshotId="None"
        status="available" volumeType="None"><attachments><attachment/></attachments><metadata/>
        </volume></volumes>""",
    )
    attachment = {"device": "vda", "id": "96b0", "serverId": "3c5e", "volumeId": "96b0"}
    assert_xml_equal(
        xml({"volumeAttachments": [attachment]}),
        f"""<volumeAttachments {NS}><volumeAttachment device="vda" id="96b0" serverId="3c5e"
        volumeId="96b0"/></volumeAttachments>""",
    )
    snapshots = parse(xml({"snapshots": [{"id": "3fbb", "size": 30}]}))
    assert snapshots.tag == "{http://docs.openstack.org/volume/api/v1}snapshots"


def test_instance_actions_xml_writes_null_as_empty() -> None:
    """Sections 4.4.20.1 and 4.4.20.2."""
    action = {"action": "create", "instance_uuid": "6041", "message": None, "project_id": "1042",
              "request_id": "req-c97c", "start_time": "2013-05-10T12:41:56.000000", "user_id": "1095"}
    assert_xml_equal(
        xml({"instanceActions": [action]}),
        f"""<instanceActions {NS}><instanceAction action="create" instance_uuid="6041" message=""
        project_id="1042" request_id="req-c97c" start_time="2013-05-10T12:41:56.000000" user_id="1095"/>
        </instanceActions>""",
    )
    detail = parse(xml({"instanceAction": action | {"events": [
        {"event": "compute_build", "start_time": "t", "finish_time": None, "result": None}]}}))
    (event,) = detail.find(f"{{{V2}}}events")
    assert event.attrib == {"event": "compute_build", "start_time": "t", "finish_time": "", "result": ""}


def test_console_output_rescue_and_vnc_console_xml() -> None:
    """Sections 4.4.4.1, 4.4.14.1 and 4.4.16.1."""
    output = "Begin: Loading \x1b[74G[ OK ]\r\ndone.\n"
    root = parse(xml({"output": output}))
    assert root.tag == f"{{{V2}}}output"
    # ESC cannot be carried by XML 1.0 and is dropped; \r survives as &#13;.
    assert root.text == "Begin: Loading [74G[ OK ]\r\ndone.\n"
    assert_xml_equal(xml({"adminPass": "MySecretPass"}), f"<adminPass {NS}>MySecretPass</adminPass>")
    assert_xml_equal(
        xml({"console": {"type": "novnc", "url": "http://vnc/?token=f9&title=x"}}),
        f"<console {NS}><type>novnc</type><url>http://vnc/?token=f9&amp;title=x</url></console>",
    )


def test_non_builtin_values_render_as_json_would() -> None:
    sid = uuid.UUID("94166e08-57a1-4910-b529-120650e8887e")
    when = dt.datetime(2014, 4, 15, 18, 38, 47, tzinfo=dt.timezone.utc)

    class Ref(msgspec.Struct):
        id: uuid.UUID

    body = {"server": {"id": sid, "created": when, "image": Ref(id=sid), "metadata": {}}}
    root = parse(xml(body))
    json_body = msgspec.json.decode(render(body, "json")[0])
    assert root.get("id") == json_body["server"]["id"] == str(sid)
    assert root.get("created") == json_body["server"]["created"] == "2014-04-15T18:38:47Z"
    assert root.find(f"{{{V2}}}image").get("id") == str(sid)


def test_unknown_prefix_and_unusable_names_do_not_break_rendering() -> None:
    root = parse(xml({"server": {"X-NEW:flag": True, "odd": {"not a name": 1}}}))
    assert root.get("{http://docs.openstack.org/compute/ext/X-NEW/api/v2}flag") == "True"
    entry = root.find(f"{{{V2}}}odd").find(f"{{{V2}}}entry")
    assert entry.get("key") == "not a name" and entry.text == "1"


@pytest.mark.parametrize("status", [202, 204])
def test_empty_bodies(status: int) -> None:
    for fmt in ("json", "xml"):
        resp = respond(View(None, status, {"Location": "http://x/y"}), fmt)
        assert resp.status == status
        assert resp.body is None
        assert resp.headers["Location"] == "http://x/y"
        assert "Content-Type" not in resp.headers


def test_respond_sets_content_type_and_status() -> None:
    resp = respond(View({"server": {"id": "x"}}, 202), "xml")
    assert resp.status == 202
    assert resp.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert parse(resp.body).get("id") == "x"
    resp = respond(View({"server": {"id": "x"}}), "json")
    assert resp.headers["Content-Type"] == "application/json"
    assert msgspec.json.decode(resp.body) == {"server": {"id": "x"}}
