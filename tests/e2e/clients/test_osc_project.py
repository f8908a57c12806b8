"""Quotas, limits, usage and the operator's views: ``quota show``, ``limits show``,
``usage show`` as the demo user; ``availability zone list``, ``hypervisor list`` and
``compute service list`` as admin."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.client import eventually
from tests.e2e.clients.conftest import Clients

# The names OSC 10 shows for quotas (Nova's, Cinder's, and the network endpoint's
# under the SDK's attribute names, which OSC leaves as they are) against the
# compute API's absolute limits (section 3.8.1) holding the same value.
QUOTA_LIMITS = {
    "instances": "maxTotalInstances",
    "cores": "maxTotalCores",
    "ram": "maxTotalRAMSize",
    "key-pairs": "maxTotalKeypairs",
    "properties": "maxServerMeta",
    "injected-files": "maxPersonality",
    "injected-file-size": "maxPersonalitySize",
    "volumes": "maxTotalVolumes",
    "gigabytes": "maxTotalVolumeGigabytes",
    "security_groups": "maxSecurityGroups",
    "security_group_rules": "maxSecurityGroupRules",
    "floating_ips": "maxTotalFloatingIps",
}

# ``limits show --absolute``: the SDK's names for the compute API's absolute limits.
ABSOLUTE = {
    "max_total_instances": "maxTotalInstances",
    "max_total_cores": "maxTotalCores",
    "max_total_ram_size": "maxTotalRAMSize",
    "max_total_keypairs": "maxTotalKeypairs",
    "max_server_meta": "maxServerMeta",
    "max_security_groups": "maxSecurityGroups",
    "max_total_floating_ips": "maxTotalFloatingIps",
    "total_instances_used": "totalInstancesUsed",
    "total_cores_used": "totalCoresUsed",
    "total_ram_used": "totalRAMUsed",
}


def agents(clients: Clients) -> dict[str, str]:
    """The stack's compute agents: host name -> availability zone."""
    return {spec.env_extra["NIMBUS_COMPUTE_HOST"]: spec.env_extra["NIMBUS_COMPUTE_AZ"]
            for spec in clients.cloud.stack.services.values()
            if "NIMBUS_COMPUTE_HOST" in spec.env_extra}


async def test_quota_show(clients: Clients, demo):
    rows = await clients.osc_json("quota", "show")
    quota = {r["Resource"]: r["Limit"] for r in rows}
    absolute = (await demo.get("/limits")).json["limits"]["absolute"]
    assert {name: quota.get(name) for name in QUOTA_LIMITS} == {
        name: absolute[limit] for name, limit in QUOTA_LIMITS.items()}


async def test_limits_show_absolute(clients: Clients, demo, server: dict):
    async def same() -> dict | None:
        # Read again while a server another test deleted is still being torn down
        # (the used counts move then); the maxima never do.
        rows = await clients.osc_json("limits", "show", "--absolute")
        shown = {r["Name"]: r["Value"] for r in rows}
        absolute = (await demo.get("/limits")).json["limits"]["absolute"]
        want = {name: absolute[limit] for name, limit in ABSOLUTE.items()}
        return (shown, absolute) if {n: shown.get(n) for n in ABSOLUTE} == want else None
    shown, absolute = await eventually(same, timeout=30)
    assert shown["total_instances_used"] >= 1
    # The block-storage endpoint's limits, which the command adds.
    assert (shown["max_total_volumes"], shown["max_total_volume_gigabytes"]) == (
        absolute["maxTotalVolumes"], absolute["maxTotalVolumeGigabytes"])


async def test_usage_show(clients: Clients, demo, server: dict):
    """The session's server is charged from its start up to now, not to the end of
    the window the command asks for (tomorrow)."""
    shown = await clients.osc_json("usage", "show")
    now = datetime.now(UTC).replace(tzinfo=None)
    assert shown["Project"] == demo.project_id
    mine = [s for s in shown["Servers"] if s["instance_id"] == server["id"]]
    assert [(s["name"], s["memory_mb"], s["vcpus"], s["flavor"], s["state"]) for s in mine] == [
        (server["name"], 1024, 1, "standard.xsmall", "active")]
    lived_h = (now - datetime.fromisoformat(mine[0]["started_at"])).total_seconds() / 3600
    assert 0 < mine[0]["hours"] <= lived_h
    assert shown["RAM MB-Hours"] >= 1024 * mine[0]["hours"]
    assert shown["CPU Hours"] >= mine[0]["hours"]


async def test_availability_zone_list_as_admin(clients: Clients):
    """Admin: every agent's host and zone (os-availability-zone/detail). The demo user
    gets 403 there, and the client falls back to the plain list, as with Nova."""
    want = set(agents(clients).values())

    async def all_up():
        rows = await clients.osc_json("availability", "zone", "list", "--long", user="admin")
        up = {r["Zone Name"] for r in rows if r["Zone Status"] == "available"}
        return rows if up >= want else None
    rows = await eventually(all_up, timeout=30)
    hosts = {(r["Host Name"], r["Zone Name"]) for r in rows if r["Service Name"] == "nova-compute"}
    assert hosts == set(agents(clients).items())
    plain = await clients.osc_json("availability", "zone", "list", "--compute")
    assert {r["Zone Name"] for r in plain} == want
    assert {r["Zone Status"] for r in plain} == {"available"}


async def test_hypervisor_list_as_admin(clients: Clients):
    rows = await clients.osc_json("hypervisor", "list", user="admin")
    assert {r["Hypervisor Hostname"] for r in rows} == set(agents(clients))
    assert {r["State"] for r in rows} == {"up"}
    denied = await clients.osc_fails("hypervisor", "list")
    assert "403" in denied.stderr or "olicy" in denied.stderr


async def test_compute_service_list_as_admin(clients: Clients):
    rows = await clients.osc_json("compute", "service", "list", user="admin")
    compute = {r["Host"]: (r["Zone"], r["Status"], r["State"]) for r in rows
               if r["Binary"] == "nova-compute"}
    assert compute == {host: (az, "enabled", "up") for host, az in agents(clients).items()}
