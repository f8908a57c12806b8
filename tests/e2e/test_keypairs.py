"""Keypairs (section 4.4.9) over HTTP with every service running: generate, import,
list, get, delete in JSON and XML with their faults, the quota, isolation, and
``key_name`` on create server reaching the guest's config drive."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import openstack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from services.api import keypair_keys
from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import NS, eventually
from tests.e2e.projects import new_project

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}
# From the spec's examples (4.4.9.1), with its fingerprint.
SPEC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQChJO5vnbzIRU45LFdm5ohdFtIDQo1jPB1xSnWu2vJtyw5w"
            "GFjoclpuFLstPMRDixloNTh36ff3XnW6Nb4CTpm5Vwz0V6Im2q56vTbS246Lw0+3fDSrnmwFkuJ7rqI5AKZk"
            "N4zJg/iJdsuJ768K7yVzwMHP/FWy6bUdRZm5ETjM2w== keypair-1")
SPEC_FINGERPRINT = "d3:e3:5f:26:dc:30:fc:04:57:91:ba:c0:1c:f8:8d:cd"


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def unique(prefix: str = "kp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ed25519_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode() + " me@host"


async def test_generate_get_list_delete_json(demo, cloud):
    name = unique()
    r = await demo.post("/os-keypairs", json={"keypair": {"name": name}})
    assert r.status == 202, r.raw
    made = r.json["keypair"]
    assert set(made) == {"name", "public_key", "private_key", "fingerprint", "user_id"}
    assert made["name"] == name and made["public_key"].startswith("ssh-rsa ")
    assert made["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(made["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    assert made["public_key"].split()[:2] == public.split()
    assert made["fingerprint"] == keypair_keys.fingerprint(made["public_key"])
    conn = await cloud.db()
    try:
        user_id = await conn.fetchval("SELECT id FROM users WHERE name = 'demo'")
        stored = await conn.fetchrow("SELECT * FROM keypairs WHERE name = $1", name)
    finally:
        await conn.close()
    assert made["user_id"] == user_id
    # Only the public half is kept.
    assert made["private_key"] not in {str(v) for v in stored.values()}
    assert "private" not in " ".join(stored.keys())

    shown = await demo.get(f"/os-keypairs/{name}")
    assert shown.status == 200
    assert shown.json == {"keypair": {"name": name, "public_key": made["public_key"],
                                      "fingerprint": made["fingerprint"]}}
    listed = (await demo.get("/os-keypairs")).json["keypairs"]
    assert {"keypair": shown.json["keypair"]} in listed

    r = await demo.delete(f"/os-keypairs/{name}")
    assert r.status == 202 and r.raw == b""
    r = await demo.get(f"/os-keypairs/{name}")
    assert r.status == 404
    assert r.json["itemNotFound"]["message"] == f"Keypair {name} not found for user {user_id}"
    assert (await demo.delete(f"/os-keypairs/{name}")).status == 404
    assert name not in {k["keypair"]["name"] for k in (await demo.get("/os-keypairs")).json[
        "keypairs"]}


async def test_import_json(demo):
    name = unique("import")
    r = await demo.post("/os-keypairs", json={"keypair": {"name": name,
                                                          "public_key": SPEC_KEY + "\n"}})
    assert r.status == 202, r.raw
    made = r.json["keypair"]
    assert "private_key" not in made
    # As given, newline and all (Nova's; gophercloud and Terraform compare it).
    assert (made["public_key"], made["fingerprint"]) == (SPEC_KEY + "\n", SPEC_FINGERPRINT)
    shown = (await demo.get(f"/os-keypairs/{name}")).json["keypair"]
    assert shown["public_key"] == SPEC_KEY + "\n"
    ed = ed25519_public()
    r = await demo.post("/os-keypairs", json={"keypair": {"name": unique("ed"), "public_key": ed,
                                                          "type": "ssh"}})
    assert r.status == 202 and r.json["keypair"]["fingerprint"] == keypair_keys.fingerprint(ed)
    await demo.delete(f"/os-keypairs/{name}")
    await demo.delete(f"/os-keypairs/{r.json['keypair']['name']}")


async def test_xml_create_import_list_get(demo):
    name = unique("xml")
    r = await demo.post("/os-keypairs", headers=XML,
                        data=f'<?xml version="1.0" ?>\n<keypair>\n<name>{name}</name>\n</keypair>')
    assert r.status == 202, r.raw
    assert r.xml.tag == q("keypair") and r.xml.attrib == {}
    assert r.xml.findtext(q("name")) == name
    assert r.xml.findtext(q("private_key")).startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert r.xml.findtext(q("public_key")).startswith("ssh-rsa ")
    assert r.xml.findtext(q("user_id")) and len(r.xml.findtext(q("fingerprint"))) == 47

    imported = unique("xml-import")
    r = await demo.post("/os-keypairs", headers=XML, data=(
        f"<keypair><name>{imported}</name><public_key>{SPEC_KEY}</public_key></keypair>"))
    assert r.status == 202, r.raw
    assert r.xml.findtext(q("fingerprint")) == SPEC_FINGERPRINT
    assert r.xml.find(q("private_key")) is None

    # The spec's list shape: <keypairs><keypair><keypair>...</keypair></keypair></keypairs>.
    r = await demo.get("/os-keypairs.xml")
    assert r.status == 200 and r.xml.tag == q("keypairs")
    items = {k.find(q("keypair")).findtext(q("name")): k.find(q("keypair"))
             for k in r.xml.findall(q("keypair"))}
    assert {name, imported} <= set(items)
    assert items[imported].findtext(q("fingerprint")) == SPEC_FINGERPRINT
    assert items[imported].findtext(q("public_key")) == SPEC_KEY
    r = await demo.get(f"/os-keypairs/{imported}", xml=True)
    assert r.status == 200 and r.xml.tag == q("keypair")
    assert r.xml.findtext(q("fingerprint")) == SPEC_FINGERPRINT
    assert (await demo.delete(f"/os-keypairs/{imported}.xml")).status == 202
    r = await demo.get(f"/os-keypairs/{imported}.xml")
    assert r.status == 404 and r.xml.tag == q("itemNotFound")
    await demo.delete(f"/os-keypairs/{name}")


async def test_faults(demo):
    taken = unique("taken")
    assert (await demo.post("/os-keypairs", json={"keypair": {"name": taken}})).status == 202
    bad_name = "Keypair data is invalid: Keypair name must be string and between 1 and 255 " \
               "characters long"
    unsafe = "Keypair data is invalid: Keypair name contains unsafe characters"
    cases = [
        ({"keypair": {"name": taken}}, 409, "conflictingRequest", f"Key pair '{taken}' already exists."),
        ({"keypair": {}}, 400, "badRequest", bad_name),
        ({"keypair": {"name": ""}}, 400, "badRequest", bad_name),
        ({"keypair": {"name": "   "}}, 400, "badRequest", bad_name),
        ({"keypair": {"name": "k" * 256}}, 400, "badRequest", bad_name),
        ({"keypair": {"name": 7}}, 400, "badRequest", bad_name),
        ({"keypair": {"name": "a/b"}}, 400, "badRequest", unsafe),
        ({"keypair": {"name": "käse"}}, 400, "badRequest", unsafe),
        ({"keypair": {"name": unique(), "public_key": "ssh-rsa not-a-key"}}, 400, "badRequest",
         None),
        ({"keypair": {"name": unique(), "public_key": "hello"}}, 400, "badRequest", None),
        ({"keypair": {"name": unique(), "public_key": ""}}, 400, "badRequest", None),
        ({"keypair": {"name": unique(), "type": "x509"}}, 400, "badRequest", None),
        ({"name": "no-root"}, 400, "badRequest", "Malformed request body"),
    ]
    for body, status, fault, message in cases:
        r = await demo.post("/os-keypairs", json=body)
        assert r.status == status, (body, r.raw)
        assert r.json[fault]["code"] == status
        if message is not None:
            assert r.json[fault]["message"] == message, body
        else:
            assert r.json[fault]["message"].startswith("Keypair"), r.json
    r = await demo.post("/os-keypairs", headers=XML, xml=True,
                        data=f"<keypair><name>{unique()}</name><public_key>ssh-ed25519 AAAA"
                             "</public_key></keypair>")
    assert r.status == 400 and r.xml.tag == q("badRequest")
    r = await demo.post("/os-keypairs", headers=XML, xml=True,
                        data=f"<keypair><name>{taken}</name></keypair>")
    assert r.status == 409 and r.xml.tag == q("conflictingRequest")
    # The names Nova takes, dots and spaces included.
    for name in ("hochmuth.pub", "my key_1-2"):
        r = await demo.post("/os-keypairs", json={"keypair": {"name": name, "public_key": SPEC_KEY}})
        assert r.status == 202, r.raw
        assert (await demo.get(f"/os-keypairs/{name}")).json["keypair"]["name"] == name
        assert (await demo.delete(f"/os-keypairs/{name}")).status == 202
    await demo.delete(f"/os-keypairs/{taken}")


async def test_quota_even_when_racing(cloud):
    api, _ = await new_project(cloud, maxTotalKeypairs=3)
    results = await asyncio.gather(*(api.post("/os-keypairs", json={"keypair": {
        "name": f"race-{i}", "public_key": SPEC_KEY}}) for i in range(8)))
    assert sorted(r.status for r in results) == [202] * 3 + [413] * 5
    over = next(r for r in results if r.status == 413)
    assert over.json["overLimit"]["message"] == "Quota exceeded, too many key pairs."
    assert over.headers["Retry-After"] == "0"
    kept = [k["keypair"]["name"] for k in (await api.get("/os-keypairs")).json["keypairs"]]
    assert len(kept) == 3
    # A name the user already has is a conflict even at the quota (which three of
    # the racing creates won is chance: take one that did).
    results = await asyncio.gather(*(api.post("/os-keypairs", json={"keypair": {
        "name": kept[0], "public_key": SPEC_KEY}}) for _ in range(4)))
    assert {r.status for r in results} == {409}
    assert (await api.delete(f"/os-keypairs/{kept[0]}")).status == 202
    results = await asyncio.gather(*(api.post("/os-keypairs", json={"keypair": {
        "name": "same", "public_key": SPEC_KEY}}) for _ in range(4)))
    assert sorted(r.status for r in results) == [202, 409, 409, 409]


async def test_another_projects_keypair_is_not_found_nor_usable(demo, alt):
    name = unique("mine")
    assert (await demo.post("/os-keypairs", json={"keypair": {"name": name}})).status == 202
    assert (await alt.get(f"/os-keypairs/{name}")).status == 404
    assert (await alt.delete(f"/os-keypairs/{name}")).status == 404
    assert name not in {k["keypair"]["name"] for k in (await alt.get("/os-keypairs")).json[
        "keypairs"]}
    r = await alt.boot(name="borrowed-key", key_name=name)
    assert r.status == 400
    assert r.json["badRequest"]["message"] == "Invalid key_name provided."
    # The other project may have a keypair of the same name: its own.
    r = await alt.post("/os-keypairs", json={"keypair": {"name": name, "public_key": SPEC_KEY}})
    assert r.status == 202
    assert (await demo.get(f"/os-keypairs/{name}")).json["keypair"]["fingerprint"] != SPEC_FINGERPRINT
    await alt.delete(f"/os-keypairs/{name}")
    assert (await demo.get(f"/os-keypairs/{name}")).status == 200
    await demo.delete(f"/os-keypairs/{name}")


async def _guest_dir(cloud, sid: str) -> Path:
    conn = await cloud.db()
    try:
        host = await conn.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
    finally:
        await conn.close()
    return Path(cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]) / host / sid


async def test_key_name_on_create_reaches_the_config_drive(demo, cloud):
    name = unique("boot")
    r = await demo.post("/os-keypairs", json={"keypair": {"name": name, "public_key": SPEC_KEY}})
    assert r.status == 202
    r = await demo.boot(name="with-key", key_name=name, config_drive=True)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    assert server["key_name"] == name
    r = await demo.get(f"/servers/{sid}", xml=True)
    assert r.xml.get("key_name") == name
    detail = (await demo.get("/servers/detail")).json["servers"]
    assert [s["key_name"] for s in detail if s["id"] == sid] == [name]
    drive_key = (await _guest_dir(cloud, sid)) / "config_drive" / "public_key"
    assert drive_key.read_text() == SPEC_KEY
    # Deleting the keypair leaves the server (and its key) alone, as in Nova.
    assert (await demo.delete(f"/os-keypairs/{name}")).status == 202
    assert (await demo.server(sid))["key_name"] == name
    await demo.delete(f"/servers/{sid}")
    await demo.wait_status(sid, lambda s: s is None)


async def test_key_name_in_xml_create_and_unknown_key_names(demo):
    name = unique("xmlboot")
    assert (await demo.post("/os-keypairs", json={"keypair": {"name": name}})).status == 202
    body = (f'<server xmlns="{NS}" name="xml-key" imageRef="{CIRROS_IMAGE_ID}" flavorRef="100" '
            f'key_name="{name}"/>')
    r = await demo.post("/servers", data=body, headers=XML)
    assert r.status == 202, r.raw
    sid = r.xml.get("id")

    async def keyed():
        server = await demo.server(sid)
        return server and server["key_name"] == name
    await eventually(keyed)
    for key_name in ("no-such-key", ""):
        r = await demo.boot(name="bad-key", key_name=key_name)
        assert r.status == 400
        assert r.json["badRequest"]["message"] == "Invalid key_name provided."
    r = await demo.post("/servers", headers=XML, xml=True,
                        data=body.replace(f'key_name="{name}"', 'key_name="nope"'))
    assert r.status == 400 and r.xml.findtext(q("message")) == "Invalid key_name provided."
    # Without key_name: null, as the spec's examples show it.
    r = await demo.boot(name="no-key")
    assert r.status == 202
    assert (await demo.server(r.json["server"]["id"]))["key_name"] is None
    for server_id in (sid, r.json["server"]["id"]):
        await demo.delete(f"/servers/{server_id}")
    await demo.delete(f"/os-keypairs/{name}")


def _sdk_keypairs(identity_url: str, public_key: str) -> dict:
    """What ``openstack keypair create/list/show/delete`` do, through openstacksdk."""
    conn = openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")
    name = unique("sdk")
    out: dict = {}
    made = conn.compute.create_keypair(name=name, public_key=public_key)
    out["made"] = (made.name, made.fingerprint)
    generated = conn.compute.create_keypair(name=name + "-gen")
    out["private"] = generated.private_key
    out["listed"] = sorted(k.name for k in conn.compute.keypairs())
    out["shown"] = conn.compute.get_keypair(name).public_key
    conn.compute.delete_keypair(name, ignore_missing=False)
    conn.compute.delete_keypair(name + "-gen", ignore_missing=False)
    out["after"] = sorted(k.name for k in conn.compute.keypairs())
    out["name"] = name
    return out


async def test_openstacksdk_keypairs(cloud):
    public_key = ed25519_public()
    out = await asyncio.to_thread(_sdk_keypairs, cloud.identity_url, public_key)
    name = out["name"]
    assert out["made"] == (name, keypair_keys.fingerprint(public_key))
    assert out["private"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert {name, name + "-gen"} <= set(out["listed"])
    assert out["shown"] == public_key
    assert name not in out["after"] and name + "-gen" not in out["after"]
