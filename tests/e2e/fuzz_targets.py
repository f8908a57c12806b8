"""The project the request fuzzer aims at, the endpoints it calls, and how the
project is brought back to a known shape after a request that was accepted.

The project is the fuzzer's own (``projects.new_project``), with tight quotas
so that accepted creates run out quickly (413 from then on, which must change
nothing either) and rate limits lifted so that the fuzzer never meets them. It
holds three servers (two ACTIVE, one SHUTOFF to begin with), a snapshot image
of its own, a keypair, a security group ``web`` with a rule, a floating IP, and
an available volume with a snapshot of it. Volumes and volume snapshots that an
accepted request made are deleted again (as snapshot images are).

Actions are aimed at roles, not at fixed servers: ``{active}`` and
``{stopped}`` in a path name whichever server is ACTIVE or SHUTOFF when the
case is sent. An accepted action may move a server to another state (stopped,
rescued, rebuilt); the project is repaired only when a role has no server left,
which with three servers is seldom, and repairs cost a wait for the fake
hypervisor each.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.acting import act, active_server, delete_and_wait, settled
from tests.e2e.client import Api, Cloud
from tests.e2e.fingerprint import Fingerprint, fingerprint, in_flight
from tests.e2e.projects import manage, new_project
from tests.e2e.volumes import available_snapshot, available_volume, delete_volumes

IMAGE = str(CIRROS_IMAGE_ID)

QUOTAS = {"maxTotalInstances": 4, "maxTotalKeypairs": 3, "maxSecurityGroups": 4,
          "maxSecurityGroupRules": 5, "maxTotalFloatingIps": 2, "maxTotalVolumes": 3,
          "maxTotalVolumeGigabytes": 4}
"""Three fixture servers and room for one more; a little room for everything else."""

ROLES = ("active", "stopped")
"""What ``{role}`` in an endpoint's path can name (see ``Targets.roles``)."""

# (verb, uri label, regex, unit): each replaces the default rule of that verb and label.
_UNLIMITED = [("POST", "*", ".*", "MINUTE"),
              ("POST", "*/servers", r"^/servers(?:\.json|\.xml)?(?:\?.*)?$", "DAY"),
              ("PUT", "*", ".*", "MINUTE"),
              ("GET", "*changes-since*", ".*changes-since.*", "MINUTE"),
              ("DELETE", "*", ".*", "MINUTE")]


@dataclass(frozen=True)
class Endpoint:
    """Somewhere a body is sent, and bodies it accepts (or refuses only for the
    state they meet)."""

    name: str
    method: str
    path: str
    valid: tuple[dict[str, Any], ...]
    weight: int = 4
    """How often it is drawn, relatively."""


# Actions whose value the API ignores (Nova's too): almost every body is accepted,
# and each accepted one costs a wait for the server to settle, and the fixture's
# repair. Drawn less often, they leave the time to the bodies there are to check.
_BODY_IGNORED = frozenset({"os-stop", "os-start", "unrescue"})


@dataclass(frozen=True)
class Probe:
    """A GET whose path or query carries a generated value in place of ``{}``."""

    name: str
    template: str


def action_bodies(floating_ip: str) -> dict[str, tuple[dict[str, Any], ...]]:
    """Valid bodies of every server action, by action name."""
    return {
        "reboot": ({"reboot": {"type": "SOFT"}}, {"reboot": {"type": "HARD"}}),
        "os-stop": ({"os-stop": None},),
        "os-start": ({"os-start": None},),
        "rebuild": ({"rebuild": {"imageRef": IMAGE, "name": "rebuilt", "adminPass": "pw",
                                 "metadata": {"a": "b"}}},),
        "createImage": ({"createImage": {"name": "snap", "metadata": {"a": "b"}}},),
        "rescue": ({"rescue": {"adminPass": "pw"}}, {"rescue": None}),
        "unrescue": ({"unrescue": None},),
        "os-getConsoleOutput": ({"os-getConsoleOutput": {"length": 5}},),
        "os-getVNCConsole": ({"os-getVNCConsole": {"type": "novnc"}},),
        "addFloatingIp": ({"addFloatingIp": {"address": floating_ip, "fixed_address": None}},),
        "removeFloatingIp": ({"removeFloatingIp": {"address": floating_ip}},),
        "addSecurityGroup": ({"addSecurityGroup": {"name": "web"}},),
        "removeSecurityGroup": ({"removeSecurityGroup": {"name": "web"}},),
    }


def endpoints(t: Targets) -> list[Endpoint]:
    server = {"name": "fuzz", "imageRef": IMAGE, "flavorRef": "100"}
    full = {**server, "metadata": {"a": "b"}, "min_count": 1, "max_count": "1",
            "key_name": t.keypair, "security_groups": [{"name": "web"}],
            "availability_zone": "az1", "networks": [{"uuid": t.network_id}],
            "personality": [{"path": "/etc/motd", "contents": "aGk="}],
            "user_data": "aGk=", "config_drive": "true"}
    hints = {"OS-SCH-HNT:scheduler_hints": {"different_host": [t.servers[-1]], "q": "x"}}
    found = [Endpoint("create", "POST", "/servers",
                      ({"server": server}, {"server": full}, {"server": server, **hints}))]
    actions = action_bodies(t.floating_ip)
    for role in ROLES:
        found += [Endpoint(f"action:{name}", "POST", f"/servers/{{{role}}}/action", bodies,
                           weight=1 if name in _BODY_IGNORED else 4)
                  for name, bodies in actions.items()]
    for kind, owner in (("server", f"/servers/{t.servers[-1]}"), ("image", f"/images/{t.image}")):
        found += [
            Endpoint(f"{kind}-metadata", "POST", f"{owner}/metadata",
                     ({"metadata": {"a": "b", "c": "d"}},)),
            Endpoint(f"{kind}-metadata", "PUT", f"{owner}/metadata", ({"metadata": {"a": "b"}},)),
            Endpoint(f"{kind}-metadata-item", "PUT", f"{owner}/metadata/a",
                     ({"meta": {"a": "x"}},)),
        ]
    rule = {"parent_group_id": t.group_id, "ip_protocol": "tcp", "from_port": 80,
            "to_port": 81, "cidr": "10.0.0.0/8"}
    found += [
        Endpoint("keypairs", "POST", "/os-keypairs",
                 ({"keypair": {"name": "k1"}},
                  {"keypair": {"name": "k2", "public_key": t.public_key}})),
        Endpoint("security-groups", "POST", "/os-security-groups",
                 ({"security_group": {"name": "g1", "description": "d"}},)),
        Endpoint("security-group-rules", "POST", "/os-security-group-rules",
                 ({"security_group_rule": rule},
                  {"security_group_rule": {"parent_group_id": str(t.group_id),
                                           "group_id": t.default_group_id}})),
        Endpoint("floating-ips", "POST", "/os-floating-ips", ({"pool": "public"},)),
        Endpoint("volumes", "POST", "/os-volumes", (
            {"volume": {"size": 1}},
            {"volume": {"size": 1, "display_name": "v", "display_description": "d",
                        "metadata": {"a": "b"}, "availability_zone": "az1",
                        "volume_type": "standard"}},
            {"volume": {"snapshot_id": t.volume_snapshot}},
            {"volume": {"size": 1, "imageRef": IMAGE}})),
        Endpoint("volume-snapshots", "POST", "/os-snapshots", (
            {"snapshot": {"volume_id": t.volume, "display_name": "s",
                          "display_description": "d", "force": False}},)),
    ]
    return found


def probes(t: Targets) -> list[Probe]:
    sid = t.servers[-1]
    return [Probe(f"probe:{name}", template) for name, template in (
        ("limit", "/servers/detail?limit={}"), ("limit", "/images?limit={}"),
        ("limit", "/flavors?limit={}"), ("marker", "/servers?marker={}"),
        ("changes-since", "/servers?changes-since={}"), ("name", "/servers?name={}"),
        ("minRam", "/flavors?minRam={}"), ("minDisk", "/flavors/detail?minDisk={}"),
        ("floating-ip-id", "/os-floating-ips/{}"), ("group-id", "/os-security-groups/{}"),
        ("keypair", "/os-keypairs/{}"), ("metadata-key", f"/servers/{sid}/metadata/{{}}"),
        ("metadata-key", f"/images/{t.image}/metadata/{{}}"), ("flavor", "/flavors/{}"),
        ("server", "/servers/{}"), ("image", "/images/{}"), ("volume", "/os-volumes/{}"),
        ("snapshot", "/os-snapshots/{}"), ("volume-type", "/os-volume-types/{}"),
        ("limit", "/os-volumes/detail?limit={}"), ("marker", "/os-snapshots?marker={}"),
    )]


@dataclass
class Targets:
    """The fuzzer's project: its user, what it holds, and its last known state."""

    api: Api
    conn: asyncpg.Connection
    servers: tuple[str, ...]
    image: str
    keypair: str
    public_key: str
    group_id: int
    default_group_id: int
    floating_ip: str
    network_id: str
    volume: str
    volume_snapshot: str
    state: Fingerprint = field(default_factory=dict)

    async def settle(self, timeout: float = 60.0) -> Fingerprint:
        """Wait until nothing in the project moves on its own; its state then."""
        deadline = time.monotonic() + timeout
        while True:
            state = await fingerprint(self.conn, self.api.project_id)
            moving = in_flight(state)
            if not moving:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"the project did not settle in {timeout} s: {moving}")
            await asyncio.sleep(0.02)

    def _vm_states(self) -> dict[str, str]:
        return {s["id"]: s["vm_state"] for s in self.state["servers"]
                if s["id"] in self.servers and s["deleted_at"] is None}

    def roles(self) -> dict[str, str]:
        """A server for each role (the fixture's first in that state) as the
        project stands; restore() sees to it that each role has one."""
        vm_states = self._vm_states()
        return {role: next(sid for sid in self.servers if vm_states.get(sid) == role)
                for role in ROLES}

    async def _drop_extra_volumes(self) -> bool:
        """Delete the snapshots, then the volumes, an accepted request made."""
        dropped = False
        for kind, path, keep in (("volume_snapshots", "/os-snapshots", self.volume_snapshot),
                                 ("volumes", "/os-volumes", self.volume)):
            extra = [v["id"] for v in self.state[kind]
                     if v["deleted_at"] is None and v["id"] != keep]
            for rid in extra:
                r = await self.api.delete(f"{path}/{rid}")
                assert r.status == 202, r.raw
            if extra and kind == "volume_snapshots":
                self.state = await self.settle()    # gone before their volumes go
            dropped = dropped or bool(extra)
        return dropped

    async def restore(self) -> None:
        """After an accepted request: let the project settle, drop snapshots but the
        fixture's, give each role a server again if it has none; take the new state."""
        self.state = await self.settle()
        extra = [i["id"] for i in self.state["images"]
                 if i["deleted_at"] is None and i["id"] != self.image]
        for image_id in extra:
            assert (await self.api.delete(f"/images/{image_id}")).status == 204
        if extra:
            self.state = await self.settle()
        if await self._drop_extra_volumes():
            self.state = await self.settle()
        if set(ROLES) <= set(self._vm_states().values()):
            return
        for sid, vm_state in self._vm_states().items():  # back to a role's state first
            if vm_state == "rescued":
                assert (await act(self.api, sid, {"unrescue": None})).status == 200
            elif vm_state == "error":
                r = await act(self.api, sid, {"rebuild": {"imageRef": IMAGE}})
                assert r.status == 202, r.raw
        self.state = await self.settle()
        vm_states = self._vm_states()
        active = [sid for sid in self.servers if vm_states.get(sid) == "active"]
        stopped = [sid for sid in self.servers if vm_states.get(sid) == "stopped"]
        if not active:
            assert (await act(self.api, stopped[0], {"os-start": None})).status == 202
        elif not stopped:
            assert (await act(self.api, active[-1], {"os-stop": None})).status == 202
        self.state = await self.settle()
        assert set(ROLES) <= set(self._vm_states().values()), self.state["servers"]


async def make_targets(cloud: Cloud) -> Targets:
    api, name = await new_project(cloud, **QUOTAS)
    for verb, uri, regex, unit in _UNLIMITED:
        await manage(cloud, "set-rate-limit", name, verb, uri, regex, "1000000", unit)
    servers = await asyncio.gather(*(active_server(api, f"fuzz-{i}") for i in range(3)))
    second = servers[1]
    assert (await act(api, second, {"os-stop": None})).status == 202
    await api.wait_status(second, lambda s: s is not None and settled("SHUTOFF")(s))
    r = await act(api, second, {"createImage": {"name": "fuzz-snap", "metadata": {"a": "b"}}})
    assert r.status == 202, r.raw
    image = r.headers["Location"].rsplit("/", 1)[-1]
    r = await api.post("/os-keypairs", json={"keypair": {"name": "fuzzkey"}})
    assert r.status == 202, r.raw
    public_key = r.json["keypair"]["public_key"]
    r = await api.post("/os-security-groups",
                       json={"security_group": {"name": "web", "description": "fuzz"}})
    assert r.status == 202, r.raw
    group_id = r.json["security_group"]["id"]
    r = await api.post("/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": group_id, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "0.0.0.0/0"}})
    assert r.status == 202, r.raw
    groups = (await api.get("/os-security-groups")).json["security_groups"]
    default_id = next(g["id"] for g in groups if g["name"] == "default")
    r = await api.post("/os-floating-ips")
    assert r.status == 200, r.raw
    floating_ip = r.json["floating_ip"]["ip"]
    network_id = await cloud.fetchval("SELECT id::text FROM networks WHERE project_id = $1",
                                      api.project_id)
    volume = (await available_volume(api, 1, display_name="fuzz"))["id"]
    volume_snapshot = (await available_snapshot(api, volume, display_name="fuzz"))["id"]
    conn = await cloud.db()
    targets = Targets(api=api, conn=conn, servers=tuple(servers), image=image,
                      keypair="fuzzkey", public_key=public_key, group_id=group_id,
                      default_group_id=default_id, floating_ip=floating_ip,
                      network_id=network_id, volume=volume, volume_snapshot=volume_snapshot)
    await targets.restore()  # the snapshot saved, too
    assert [i["status"] for i in targets.state["images"]] == ["ACTIVE"]
    return targets


async def drop_targets(t: Targets) -> None:
    """Give the floating IPs back to the session's pool; delete the servers and volumes."""
    for fip in (await t.api.get("/os-floating-ips")).json["floating_ips"]:
        await t.api.delete(f"/os-floating-ips/{fip['id']}")
    await delete_volumes(t.api)
    live = [s["id"] for s in (await t.api.get("/servers")).json["servers"]]
    await delete_and_wait(t.api, *live)
    await t.conn.close()
