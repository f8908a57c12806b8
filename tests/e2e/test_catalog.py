"""Versions, extensions, flavors and images as the spec shows them."""

from __future__ import annotations

from lxml import etree

from services.api.catalog import FLAVORS, UBUNTU_IMAGE_ID
from tests.e2e.client import ATOM, NS


async def test_flavors_are_the_contract_seed(demo):
    r = await demo.get("/flavors/detail")
    assert r.status == 200
    got = {f["id"]: f for f in r.json["flavors"]}
    assert set(got) == {f[0] for f in FLAVORS} == {
        "100", "101", "102", "103", "104", "105", "110", "114", "203", "204", "205"}
    small = got["100"]
    assert (small["name"], small["ram"], small["disk"], small["vcpus"]) == ("standard.xsmall", 1024, 10, 1)
    assert small["OS-FLV-EXT-DATA:ephemeral"] == 10
    assert small["rxtx_factor"] == 1.0 and small["swap"] == ""
    assert got["205"]["ram"] == 61440 and got["205"]["OS-FLV-EXT-DATA:ephemeral"] == 540
    brief = (await demo.get("/flavors")).json["flavors"]
    assert set(brief[0]) == {"id", "name", "links"}


async def test_flavor_get_json_and_xml(demo, cloud):
    r = await demo.get("/flavors/103")
    assert r.json["flavor"]["name"] == "standard.large"
    assert {l["rel"]: l["href"] for l in r.json["flavor"]["links"]} == {
        "self": f"{cloud.api_url}/v2/{demo.project_id}/flavors/103",
        "bookmark": f"{cloud.api_url}/{demo.project_id}/flavors/103"}
    r = await demo.get("/flavors/103.xml")
    assert r.headers["Content-Type"].startswith("application/xml")
    assert etree.QName(r.xml) == etree.QName(NS, "flavor")
    assert r.xml.get("ram") == "8192" and r.xml.get("vcpus") == "4"
    ext_ns = "http://docs.openstack.org/compute/ext/flavor_extra_data/api/v1.1"
    assert r.xml.get(f"{{{ext_ns}}}ephemeral") == "130"
    # The suffix wins over Accept.
    r = await demo.get("/flavors/103.json", headers={"Accept": "application/xml"})
    assert r.json["flavor"]["id"] == "103"


async def test_images_public_with_size_and_metadata(demo):
    r = await demo.get("/images/detail")
    images = {i["id"]: i for i in r.json["images"]}
    assert len(images) >= 2
    assert all(i["status"] == "ACTIVE" for i in images.values())
    ubuntu = images[str(UBUNTU_IMAGE_ID)]
    assert ubuntu["minDisk"] == 8 and ubuntu["OS-EXT-IMG-SIZE:size"] == 260178432
    assert ubuntu["metadata"]["architecture"] == "x86_64"
    r = await demo.get(f"/images/{UBUNTU_IMAGE_ID}", xml=True)
    assert etree.QName(r.xml) == etree.QName(NS, "image")
    assert r.xml.get("minDisk") == "8"
    metas = {m.get("key"): m.text for m in r.xml.iter(f"{{{NS}}}meta")}
    assert metas["os_type"] == "linux-ext4"
    assert (await demo.get("/images/00000000-0000-0000-0000-000000000000")).status == 404


async def test_extensions_list_only_implemented(demo):
    r = await demo.get("/extensions")
    aliases = {e["alias"] for e in r.json["extensions"]}
    # Every extension of section 3.10 is built. Its list writes os-hide-server-address
    # and OS-EXT-IMG_SIZE; the extension list of 4.4.1.2 (and Nova) spell them so.
    assert aliases == {
        "os-availability-zone", "os-config-drive", "os-console-output", "os-create-server-ext",
        "OS-EXT-AZ", "OS-EXT-STS", "OS-FLV-EXT-DATA", "os-floating-ips", "os-keypairs",
        "os-multiple-create", "OS-SCH-HNT", "os-security-groups", "os-used-limits", "os-volumes",
        "os-rescue", "os-consoles", "os-flavor-rxtx", "os-flavor-swap",
        "os-hide-server-addresses", "OS-EXT-IMG-SIZE", "os-instance-actions", "os-user-data",
        "os-extended-floating-ips", "OS-EXT-IPS", "OS-EXT-IPS-MAC", "os-server-start-stop",
        # Nova's operator and quota resources today's clients call (issue 12).
        "os-quota-sets", "os-extended-quotas", "os-hypervisors", "os-hypervisor-status",
        "os-services", "os-extended-services", "os-simple-tenant-usage", "os-networks",
        "os-tenant-networks"}
    r = await demo.get("/extensions/OS-EXT-STS")
    assert r.json["extension"]["name"] == "ExtendedStatus"
    assert r.json["extension"]["namespace"] == \
        "http://docs.openstack.org/compute/ext/extended_status/api/v1.1"
    r = await demo.get("/extensions/OS-EXT-STS.xml")
    assert etree.QName(r.xml).localname == "extension" and r.xml.get("alias") == "OS-EXT-STS"
    r = await demo.get("/extensions/os-no-such-extension")
    assert r.status == 404 and r.json["itemNotFound"]["message"] == (
        "Extension os-no-such-extension could not be found.")
    r = await demo.get("/extensions/os-volumes")
    assert r.json["extension"] == {
        "alias": "os-volumes", "name": "Volumes", "description": "Volumes support.",
        "namespace": "http://docs.openstack.org/compute/ext/volumes/api/v1.1",
        "updated": "2011-03-25T00:00:00+00:00", "links": []}


async def test_versions_xml(cloud):
    r = await cloud.request("GET", "/v2", xml=True)
    assert r.status == 200
    assert etree.QName(r.xml).localname == "version" and r.xml.get("id") == "v2.0"
    assert r.xml.findall(f"{{{ATOM}}}link")
