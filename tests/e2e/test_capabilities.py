"""What a host's hypervisor cannot do, the API refuses up front (501 notImplemented),
in the representation asked for, and changes nothing: the server stays as it was
and no instance action is recorded. The host is a real compute agent whose
simulated hypervisor lacks rescue, snapshot and VNC (``NIMBUS_FAKE_LACKS``), in a
zone of its own."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from deploy.local.infra import free_ports
from deploy.local.supervisor import ServiceSpec, Stack

NS = "http://docs.openstack.org/compute/api/v2"
HOST, AZ = "lean-1", "az-lean"


@pytest.fixture(scope="module")
async def lean_host(cloud):
    port = free_ports(1)[0]
    spec = ServiceSpec("compute-lean", [sys.executable, "-m", "services.compute_agent"], {
        "NIMBUS_COMPUTE_HOST": HOST, "NIMBUS_COMPUTE_AZ": AZ,
        "NIMBUS_FAKE_LACKS": "rescue,snapshot,vnc_console",
        "NIMBUS_HEALTH_HOST": "127.0.0.1", "NIMBUS_HEALTH_PORT": str(port),
    }, f"http://127.0.0.1:{port}/healthz")
    # A run directory of its own: stopping this stack must not stop the cloud's.
    stack = Stack(Path(tempfile.mkdtemp(prefix="nimbus-lean-")), cloud.stack.env, [spec],
                  cwd=cloud.stack.cwd)
    stack.start()
    try:
        stack.wait_healthy(60)
        yield stack
    finally:
        stack.stop()


async def test_actions_the_hypervisor_cannot_do_are_501_and_change_nothing(cloud, demo,
                                                                           lean_host):
    r = await demo.boot("lean", availability_zone=AZ)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, lambda s: s is not None and s["status"] == "ACTIVE")
    assert server["OS-EXT-AZ:availability_zone"] == AZ
    assert await cloud.fetchval("SELECT capabilities->>'rescue' FROM compute_hosts "
                                "WHERE host = $1", HOST) == "false"
    actions_before = await cloud.fetchval(
        "SELECT count(*) FROM instance_actions WHERE server_id = $1", server["id"])
    refused = {
        "rescue": ({"rescue": None}, "cannot rescue a server"),
        "createImage": ({"createImage": {"name": "snap"}}, "cannot snapshot a server"),
        "os-getVNCConsole": ({"os-getVNCConsole": {"type": "novnc"}},
                             "cannot give a VNC console"),
    }
    for body, words in refused.values():
        r = await demo.post(f"/servers/{sid}/action", json=body)
        assert r.status == 501, r.raw
        fault = r.json["notImplemented"]
        assert fault["code"] == 501 and words in fault["message"]
        assert "fake hypervisor" in fault["message"]
    # The same in XML.
    r = await demo.post(f"/servers/{sid}/action.xml", json={"rescue": None})
    assert r.status == 501
    root = r.xml
    assert root is not None and root.tag == f"{{{NS}}}notImplemented" and root.get("code") == "501"
    # Nothing changed: still ACTIVE with no task, no snapshot image, no new action.
    after = await demo.server(sid)
    assert after["status"] == "ACTIVE" and after["OS-EXT-STS:task_state"] is None
    assert await cloud.fetchval("SELECT count(*) FROM images WHERE server_id = $1",
                                server["id"]) == 0
    assert await cloud.fetchval("SELECT count(*) FROM instance_actions WHERE server_id = $1",
                                server["id"]) == actions_before
    # What it can do still works.
    r = await demo.post(f"/servers/{sid}/action", json={"reboot": {"type": "HARD"}})
    assert r.status == 202
    await demo.wait_status(sid, lambda s: s is not None and s["status"] == "ACTIVE"
                           and s["OS-EXT-STS:task_state"] is None)
    assert (await demo.delete(f"/servers/{sid}")).status == 204
    await demo.wait_status(sid, lambda s: s is None)
