"""The compute agent's reconcile loop, end to end: the fake host is changed behind
the control plane's back with its CLI (as an operator would with ``virsh``), and
the API shows what the hypervisor did within a reconcile period (2 s here), plus
the stop it starts, with slack for a loaded machine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

from tests.e2e.acting import active_server, host_of
from tests.e2e.client import Api, Cloud, eventually
from tests.e2e.conftest import REPO

PERIOD_S = 2.0  # NIMBUS_RECONCILE_INTERVAL_S of the e2e stack


async def fake_host(cloud: Cloud, host: str, *args: str) -> subprocess.CompletedProcess:
    state_dir = cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.compute_agent.drivers.fake_host",
                         "--state-dir", state_dir, "--host", host, *args],
        cwd=REPO, capture_output=True, text=True, check=True)


async def _within_a_period(api: Api, sid: str, status: str) -> dict:
    async def shown() -> dict | None:
        server = await api.server(sid)
        return server if server and server["status"] == status else None
    # One period for the loop to come round, one for the stop it starts, and slack
    # for a loaded machine.
    return await eventually(shown, timeout=3 * PERIOD_S + 5)


async def test_a_guest_stopped_out_of_band_ends_shutoff(cloud: Cloud, demo: Api) -> None:
    sid = await active_server(demo, "oob-stop")
    host = await host_of(cloud, sid)
    await fake_host(cloud, host, "stop", sid)
    server = await _within_a_period(demo, sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == 4
    # Through the stop operation, recorded as an action saying why.
    actions = (await demo.get(f"/servers/{sid}/os-instance-actions")).json["instanceActions"]
    stop = next(a for a in actions if a["action"] == "stop")
    assert "shut down on its own" in (stop["message"] or "")
    # And it starts again through the API as any stopped server does.
    assert (await demo.post(f"/servers/{sid}/action", json={"os-start": None})).status == 202
    await _within_a_period(demo, sid, "ACTIVE")
    await demo.delete(f"/servers/{sid}")


async def test_a_crashed_guest_ends_shutoff(cloud: Cloud, demo: Api) -> None:
    sid = await active_server(demo, "oob-crash")
    await fake_host(cloud, await host_of(cloud, sid), "crash", sid)
    await _within_a_period(demo, sid, "SHUTOFF")
    actions = (await demo.get(f"/servers/{sid}/os-instance-actions")).json["instanceActions"]
    stop = next(a for a in actions if a["action"] == "stop")
    assert stop["message"] == "Stopped by its compute host: the guest crashed."
    # Stopped through the stop operation, the crashed guest is switched off.
    assert (await demo.server(sid))["OS-EXT-STS:power_state"] == 4
    await demo.delete(f"/servers/{sid}")


async def test_a_guest_that_vanished_is_an_error_with_a_fault(cloud: Cloud, demo: Api) -> None:
    sid = await active_server(demo, "oob-vanish")
    host = await host_of(cloud, sid)
    await fake_host(cloud, host, "destroy", sid)
    server = await _within_a_period(demo, sid, "ERROR")
    assert "no longer on the hypervisor" in server["fault"]["message"]
    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    await demo.wait_status(sid, lambda s: s is None)


async def test_an_orphan_guest_is_destroyed(cloud: Cloud, demo: Api) -> None:
    orphan = str(uuid.uuid4())
    host = "compute-az1"
    await fake_host(cloud, host, "create", orphan, "--name", "nobody-asked")
    listed = (await fake_host(cloud, host, "list")).stdout
    assert orphan in listed

    async def gone() -> bool:
        return orphan not in (await fake_host(cloud, host, "list")).stdout
    await eventually(gone, timeout=3 * PERIOD_S + 5)
