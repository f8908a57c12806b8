"""``openstack keypair ...`` and ``openstack security group [rule] ...``."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization

from tests.e2e.clients.conftest import Clients


def md5_fingerprint(private_key_pem: bytes) -> str:
    """Nova's fingerprint of the public half: MD5 of the key blob, colon separated."""
    key = serialization.load_ssh_private_key(private_key_pem, password=None)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH)
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


async def test_keypair_create_list_delete(clients: Clients, demo, tmp_path):
    name = clients.name("key")
    made = await clients.osc_json("keypair", "create", "--private-key", str(tmp_path / "id"), name)
    assert made["name"] == name
    assert made["fingerprint"] == md5_fingerprint((tmp_path / "id").read_bytes())
    listed = await clients.osc_json("keypair", "list")
    assert {"Name": name, "Fingerprint": made["fingerprint"]} in [
        {k: row[k] for k in ("Name", "Fingerprint")} for row in listed]
    api = await demo.get(f"/os-keypairs/{name}")
    assert api.json["keypair"]["fingerprint"] == made["fingerprint"]
    await clients.osc("keypair", "delete", name)
    assert name not in [row["Name"] for row in await clients.osc_json("keypair", "list")]
    assert (await demo.get(f"/os-keypairs/{name}")).status == 404


async def test_security_group_and_rules(clients: Clients, demo):
    name = clients.name("web")
    made = await clients.osc_json("security", "group", "create", "--description", "web tier",
                                  name)
    assert (made["name"], made["description"]) == (name, "web tier")
    try:
        listed = await clients.osc_json("security", "group", "list")
        assert [(g["ID"], g["Description"]) for g in listed if g["Name"] == name] == [
            (made["id"], "web tier")]
        ssh = await clients.osc_json("security", "group", "rule", "create", "--protocol", "tcp",
                                     "--dst-port", "22", "--remote-ip", "10.1.0.0/16", name)
        assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"],
                ssh["remote_ip_prefix"], ssh["direction"], ssh["security_group_id"]) == (
            "tcp", 22, 22, "10.1.0.0/16", "ingress", made["id"])
        web = await clients.osc_json("security", "group", "rule", "create", "--protocol", "tcp",
                                     "--dst-port", "80:81", made["id"])
        assert (web["port_range_min"], web["port_range_max"]) == (80, 81)
        rules = await clients.osc_json("security", "group", "rule", "list", name)
        mine = {r["ID"]: (r["IP Protocol"], r["Port Range"], r["IP Range"], r["Direction"])
                for r in rules if r["ID"] in (ssh["id"], web["id"])}
        assert mine == {ssh["id"]: ("tcp", "22:22", "10.1.0.0/16", "ingress"),
                        web["id"]: ("tcp", "80:81", "0.0.0.0/0", "ingress")}
        # The same group and rules through the compute API.
        api = await demo.get(f"/os-security-groups/{made['id']}")
        assert api.status == 200, api.raw
        assert sorted((r["from_port"], r["to_port"], r["ip_range"].get("cidr"))
                      for r in api.json["security_group"]["rules"]) == [
            (22, 22, "10.1.0.0/16"), (80, 81, "0.0.0.0/0")]
        await clients.osc("security", "group", "rule", "delete", ssh["id"])
        left = await clients.osc_json("security", "group", "rule", "list", name)
        assert [r["ID"] for r in left if r["ID"] in (ssh["id"], web["id"])] == [web["id"]]
    finally:
        await clients.run("openstack", "security", "group", "delete", name, check=False)
    assert name not in [g["Name"] for g in await clients.osc_json("security", "group", "list")]
    assert (await demo.get(f"/os-security-groups/{made['id']}")).status == 404
