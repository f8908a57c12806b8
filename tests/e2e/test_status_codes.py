"""The status-code profiles, side by side: every operation where the spec and Nova
disagree (``services.api.status_codes``) done on a stack with the default profile
(``spec``) and on one started with ``NIMBUS_API_STATUS_CODES=nova``. Each answers
its profile's code with the same body; the operations around them (delete, detach,
rescue) answer the same code under both."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from services.api import keypair_keys
from tests.e2e.acting import act, active_server, delete_and_wait, settled, watch
from tests.e2e.client import Api, Response, eventually
from tests.e2e.projects import new_project
from tests.e2e.volumes import wait_snapshot, wait_volume, wait_volume_gone

SPEC, NOVA = "spec", "nova"


@pytest.fixture(scope="module")
async def users(cloud, nova_cloud) -> dict[str, Api]:
    """A project of this module's own on each stack."""
    (spec_user, _), (nova_user, _) = await asyncio.gather(new_project(cloud),
                                                          new_project(nova_cloud))
    return {SPEC: spec_user, NOVA: nova_user}


@pytest.fixture(scope="module")
async def servers(users) -> dict[str, str]:
    """An ACTIVE server on each stack."""
    ids = await asyncio.gather(*(active_server(users[p], "profiled") for p in (SPEC, NOVA)))
    yield dict(zip((SPEC, NOVA), ids))
    await asyncio.gather(*(delete_and_wait(users[p], ids[i]) for i, p in enumerate((SPEC, NOVA))))


def _masked(body: Any, varying: set[str]) -> Any:
    """``body`` with the values of the ``varying`` keys (ids, times) replaced by a
    mark, after checking that each is there and not empty."""
    body = copy.deepcopy(body)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in varying:
                    assert value not in (None, ""), (key, node)
                    node[key] = "<varies>"
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(body)
    return body


def assert_codes(answers: dict[str, Response], spec: int, nova: int, *,
                 varying: set[str] = frozenset()) -> None:
    """Each profile answered its code, and both the same body (but for ``varying``)."""
    assert answers[SPEC].status == spec, answers[SPEC].raw
    assert answers[NOVA].status == nova, answers[NOVA].raw
    if answers[SPEC].json is None:
        assert answers[SPEC].raw == answers[NOVA].raw == b""
    else:
        assert _masked(answers[SPEC].json, varying) == _masked(answers[NOVA].json, varying)


async def both(users: dict[str, Api], call) -> dict[str, Response]:
    """``call(api, profile)`` on both stacks at once."""
    spec, nova = await asyncio.gather(call(users[SPEC], SPEC), call(users[NOVA], NOVA))
    return {SPEC: spec, NOVA: nova}


async def test_create_keypair_202_or_200(users):
    key = keypair_keys.generate()
    made = await both(users, lambda api, _: api.post("/os-keypairs", json={
        "keypair": {"name": "profiled", "public_key": key.public_key}}))
    assert_codes(made, 202, 200, varying={"user_id"})
    assert made[NOVA].json["keypair"]["fingerprint"] == key.fingerprint

    generated = await both(users, lambda api, _: api.post("/os-keypairs", json={
        "keypair": {"name": "generated"}}))
    assert_codes(generated, 202, 200, varying={"user_id", "public_key", "private_key",
                                               "fingerprint"})

    # In XML too: the code is the profile's, the body the same element.
    xml = await both(users, lambda api, _: api.post("/os-keypairs", xml=True, json={
        "keypair": {"name": "in-xml", "public_key": key.public_key}}))
    assert (xml[SPEC].status, xml[NOVA].status) == (202, 200)
    assert xml[SPEC].xml.tag == xml[NOVA].xml.tag == "{http://docs.openstack.org/compute/api/v2}keypair"

    # Get and delete are no disagreement: the same code under both.
    shown = await both(users, lambda api, _: api.get("/os-keypairs/profiled"))
    assert_codes(shown, 200, 200, varying={"user_id"})
    for name in ("profiled", "generated", "in-xml"):
        gone = await both(users, lambda api, _, n=name: api.delete(f"/os-keypairs/{n}"))
        assert_codes(gone, 202, 202)
    listed = await both(users, lambda api, _: api.get("/os-keypairs"))
    assert listed[SPEC].json == listed[NOVA].json == {"keypairs": []}


async def test_create_security_group_and_rule_202_or_200(users):
    made = await both(users, lambda api, _: api.post("/os-security-groups", json={
        "security_group": {"name": "profiled", "description": "status codes"}}))
    assert_codes(made, 202, 200, varying={"id", "tenant_id"})
    gid = {p: made[p].json["security_group"]["id"] for p in (SPEC, NOVA)}

    rule = await both(users, lambda api, p: api.post("/os-security-group-rules", json={
        "security_group_rule": {"parent_group_id": gid[p], "ip_protocol": "tcp",
                                "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}}))
    assert_codes(rule, 202, 200, varying={"id", "parent_group_id"})
    assert rule[NOVA].json["security_group_rule"]["ip_range"] == {"cidr": "10.0.0.0/8"}

    shown = await both(users, lambda api, p: api.get(f"/os-security-groups/{gid[p]}"))
    assert_codes(shown, 200, 200, varying={"id", "tenant_id", "parent_group_id"})
    assert [r["from_port"] for r in shown[NOVA].json["security_group"]["rules"]] == [22]

    rid = {p: rule[p].json["security_group_rule"]["id"] for p in (SPEC, NOVA)}
    gone = await both(users, lambda api, p: api.delete(f"/os-security-group-rules/{rid[p]}"))
    assert_codes(gone, 202, 202)
    gone = await both(users, lambda api, p: api.delete(f"/os-security-groups/{gid[p]}"))
    assert_codes(gone, 202, 202)


async def test_create_volume_and_snapshot_202_or_200(users):
    made = await both(users, lambda api, _: api.post("/os-volumes", json={
        "volume": {"size": 1, "display_name": "profiled", "display_description": "codes"}}))
    assert_codes(made, 202, 200, varying={"id", "created_at"})
    assert made[NOVA].json["volume"]["status"] == "creating"
    vid = {p: made[p].json["volume"]["id"] for p in (SPEC, NOVA)}
    for p in (SPEC, NOVA):
        assert made[p].headers["Location"].endswith(f"/os-volumes/{vid[p]}")
    await asyncio.gather(*(wait_volume(users[p], vid[p]) for p in (SPEC, NOVA)))

    snap = await both(users, lambda api, p: api.post("/os-snapshots", json={
        "snapshot": {"volume_id": vid[p], "display_name": "snap"}}))
    assert_codes(snap, 202, 200, varying={"id", "volume_id", "created_at"})
    sid = {p: snap[p].json["snapshot"]["id"] for p in (SPEC, NOVA)}
    await asyncio.gather(*(wait_snapshot(users[p], sid[p]) for p in (SPEC, NOVA)))

    gone = await both(users, lambda api, p: api.delete(f"/os-snapshots/{sid[p]}"))
    assert_codes(gone, 202, 202)
    await asyncio.gather(*(_snapshot_gone(users[p], sid[p]) for p in (SPEC, NOVA)))
    gone = await both(users, lambda api, p: api.delete(f"/os-volumes/{vid[p]}"))
    assert_codes(gone, 202, 202)
    await asyncio.gather(*(wait_volume_gone(users[p], vid[p]) for p in (SPEC, NOVA)))


async def _snapshot_gone(api: Api, sid: str) -> None:
    async def gone() -> bool:
        return (await api.get(f"/os-snapshots/{sid}")).status == 404
    await eventually(gone, timeout=60.0)


async def test_attach_volume_202_or_200(users, servers):
    made = await both(users, lambda api, _: api.post("/os-volumes", json={"volume": {"size": 1}}))
    assert_codes(made, 202, 200, varying={"id", "created_at"})
    vid = {p: made[p].json["volume"]["id"] for p in (SPEC, NOVA)}
    await asyncio.gather(*(wait_volume(users[p], vid[p]) for p in (SPEC, NOVA)))
    attached = await both(users, lambda api, p: api.post(
        f"/servers/{servers[p]}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vid[p]}}))
    assert_codes(attached, 202, 200, varying={"id", "volumeId", "serverId"})
    assert attached[NOVA].json["volumeAttachment"]["device"] == "/dev/vdb"
    await asyncio.gather(*(wait_volume(users[p], vid[p], "in-use") for p in (SPEC, NOVA)))

    detached = await both(users, lambda api, p: api.delete(
        f"/servers/{servers[p]}/os-volume_attachments/{vid[p]}"))
    assert_codes(detached, 202, 202)
    await asyncio.gather(*(wait_volume(users[p], vid[p]) for p in (SPEC, NOVA)))
    await both(users, lambda api, p: api.delete(f"/os-volumes/{vid[p]}"))


async def test_unrescue_200_or_202(users, servers):
    rescued = await both(users, lambda api, p: act(api, servers[p],
                                                   {"rescue": {"adminPass": "Pr0filed"}}))
    assert_codes(rescued, 200, 200)  # rescue: the spec and Nova agree
    assert rescued[NOVA].json == {"adminPass": "Pr0filed"}
    await asyncio.gather(*(watch(users[p], servers[p], settled("RESCUE")) for p in (SPEC, NOVA)))

    back = await both(users, lambda api, p: act(api, servers[p], {"unrescue": None}))
    assert_codes(back, 200, 202)
    ends = await asyncio.gather(*(watch(users[p], servers[p], settled("ACTIVE"))
                                  for p in (SPEC, NOVA)))
    assert [server["OS-EXT-STS:vm_state"] for server, _ in ends] == ["active", "active"]
