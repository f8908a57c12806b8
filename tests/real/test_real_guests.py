"""Real guests through the HTTP API: QEMU virtual machines booted by the libvirt
driver, each running Nimbus Tiny Linux, which prints what its config drive told
it to the serial console. Everything is checked from outside as a user or an
operator would: the API's answers, the console output the guest itself wrote,
the host's processes and files.

One story, in order (each step needs the one before): two guests boot with user
data and a config drive; a soft reboot, a stop and start, a rescue and unrescue
each show in what the guest does; a snapshot boots a third guest that finds the
first one's disk; a QEMU process killed behind Nimbus's back ends SHUTOFF; a
delete leaves no process, no domain and no file.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from deploy.local.hypervisor import qemu_processes
from tests.e2e.client import Api, Cloud, eventually
from tests.e2e.test_vnc_console import _handshake, _proxy_base

TINY = "5e0b1d2c-7a41-4c8e-9f3a-1b7d6c2e9a10"  # services.api.catalog.TINY_IMAGE_ID
BOOT_S = 120.0  # a TCG guest reaches its shell in about 10 s here; room for a busy machine


def qemu_pid(server_id: str) -> int | None:
    """The QEMU process running the guest (libvirt gives it ``-uuid <server id>``)."""
    found = qemu_processes(server_id)
    assert len(found) <= 1, found
    return found[0] if found else None


async def console(api: Api, sid: str, length: int | None = None) -> str:
    body = {"os-getConsoleOutput": {} if length is None else {"length": length}}
    r = await api.post(f"/servers/{sid}/action", json=body)
    assert r.status == 200, r.raw
    return r.json["output"]


async def console_shows(api: Api, sid: str, pattern: str, *, count: int = 1,
                        timeout: float = BOOT_S) -> str:
    """Wait until the guest's console holds ``pattern`` at least ``count`` times."""
    async def seen():
        text = await console(api, sid)
        return text if len(re.findall(pattern, text)) >= count else None
    return await eventually(seen, timeout=timeout, interval=0.5)


async def settled(api: Api, sid: str, status: str, timeout: float = BOOT_S) -> dict:
    server, _ = await api.wait_status(
        sid, lambda s: s is not None and (s["status"] == status or s["status"] == "ERROR")
        and s["OS-EXT-STS:task_state"] is None, timeout=timeout)
    assert server is not None and server["status"] == status, server
    return server


async def action(api: Api, sid: str, body: dict, status: int = 202) -> None:
    r = await api.post(f"/servers/{sid}/action", json=body)
    assert r.status == status, r.raw


def guest_dir(cloud: Cloud, server: dict) -> Path:
    host = server["OS-EXT-SRV-ATTR:host"] if "OS-EXT-SRV-ATTR:host" in server else None
    root = Path(cloud.stack.env["NIMBUS_LIBVIRT_STATE_DIR"])
    found = list(root.glob(f"*/guests/{server['id']}"))
    assert host is None or all(p.parts[-3] == host for p in found)
    return found[0] if found else root / "none" / "guests" / server["id"]


async def test_real_guests_live_their_whole_life_through_the_api(real_cloud, real_demo):
    api, cloud = real_demo, real_cloud
    # --- two guests boot, each with its own user data and config drive ---
    sids = []
    for name in ("web-1", "db_2"):
        r = await api.boot(name, image=TINY, config_drive=True,
                           user_data=base64.b64encode(f"hello from {name}\nline two\n".encode())
                           .decode(), metadata={"role": name})
        assert r.status == 202, r.raw
        sids.append(r.json["server"]["id"])
    a, b = sids
    for sid, hostname in ((a, "web-1"), (b, "db-2")):
        server = await settled(api, sid, "ACTIVE")
        # ACTIVE only once the guest runs: its QEMU process is there.
        assert qemu_pid(sid) is not None
        ip = server["addresses"]["private"][0]["addr"]
        text = await console_shows(api, sid, r"nimbus-tiny: ready")
        assert "Linux version" in text  # the kernel's own boot lines
        assert f"nimbus-tiny: hostname={hostname}" in text
        assert f"nimbus-tiny: uuid={sid}" in text
        assert f"nimbus-tiny: user-data: hello from {server['name']}" in text
        # The prefix of the address's own subnet (the default network's is a /22).
        prefix = await real_cloud.fetchval(
            "SELECT masklen(cidr) FROM subnets WHERE cidr >> $1::inet", ip)
        assert re.search(rf"nimbus-tiny: ip={re.escape(ip)}/{prefix} dev eth0", text), \
            text[-2000:]
        assert f"nimbus-tiny: disk boot 1, first booted by {sid}" in text
    # The VNC console: the proxy relays the guest's own RFB server (QEMU's).
    r = await api.post(f"/servers/{a}/action", json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status == 200, r.raw
    token = parse_qs(urlsplit(r.json["console"]["url"]).query)["token"][0]
    async with cloud.session.ws_connect(f"{_proxy_base(cloud)}/websockify?token={token}",
                                        protocols=("binary",)) as ws:
        banner, desktop = await _handshake(ws)
    assert banner == b"RFB 003.008\n" and desktop == f"QEMU (nimbus-{a})"
    # length is honoured: the last lines only.
    tail = await console(api, a, length=3)
    assert len(tail.splitlines()) <= 3 and tail in await console(api, a)

    # --- a soft reboot: the guest answers the power button and boots again ---
    await action(api, a, {"reboot": {"type": "SOFT"}})
    await settled(api, a, "ACTIVE")
    text = await console_shows(api, a, r"nimbus-tiny: ready", count=2)
    assert "nimbus-tiny: power button: shutting down" in text
    assert "nimbus-tiny: disk boot 2, first booted by" in text

    # --- stop: the QEMU process goes; start: a new boot ---
    pid_before = qemu_pid(b)
    await action(api, b, {"os-stop": None})
    server = await settled(api, b, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == 4
    assert qemu_pid(b) is None and pid_before is not None
    await action(api, b, {"os-start": None})
    await settled(api, b, "ACTIVE")
    await console_shows(api, b, r"nimbus-tiny: disk boot 2, first booted by")
    assert qemu_pid(b) not in (None, pid_before)

    # --- rescue boots the rescue image with the server's own disk attached ---
    await action(api, a, {"rescue": {"adminPass": "rescue-pass-1"}}, status=200)
    await settled(api, a, "RESCUE")
    text = await console_shows(api, a, r"nimbus-tiny: rescue: found the server's disk on vdb")
    assert "rescue-pass-1" not in text
    await action(api, a, {"unrescue": None}, status=200)
    await settled(api, a, "ACTIVE")
    await console_shows(api, a, r"nimbus-tiny: disk boot 3, first booted by")

    # --- createImage: a file from the guest's disk, which boots a third server ---
    r = await api.post(f"/servers/{a}/action", json={"createImage": {"name": "web-snap"}})
    assert r.status == 202, r.raw
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    image = await eventually(lambda: _active_image(api, image_id), timeout=BOOT_S)
    store = Path(cloud.stack.env["NIMBUS_IMAGES_DIR"])
    assert (store / f"{image_id}.qcow2").stat().st_size == image["OS-EXT-IMG-SIZE:size"]
    r = await api.boot("from-snap", image=image_id)
    assert r.status == 202, r.raw
    c = r.json["server"]["id"]
    await settled(api, c, "ACTIVE")
    # The snapshot carries what the first guest wrote to its disk.
    await console_shows(api, c, rf"nimbus-tiny: disk boot \d+, first booted by {a}")

    # --- a QEMU process killed behind Nimbus's back: SHUTOFF within a period ---
    pid = qemu_pid(c)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    period = float(cloud.stack.env["NIMBUS_RECONCILE_INTERVAL_S"])
    started = time.monotonic()
    server = await settled(api, c, "SHUTOFF", timeout=60)
    elapsed = time.monotonic() - started
    # How fast is a figure, not a verdict (a loaded machine is slower): what is
    # checked is who stopped it, the agent's reconcile loop.
    print(f"QEMU killed -> SHUTOFF in {elapsed:.1f} s (reconcile period {period:g} s)")
    assert server["OS-EXT-STS:power_state"] == 4
    acts = (await api.get(f"/servers/{c}/os-instance-actions")).json["instanceActions"]
    assert acts[0]["action"] == "stop" and "compute host" in (acts[0]["message"] or ""), acts[0]

    # --- delete leaves no process, no domain, no disk ---
    servers = {sid: await api.server(sid) for sid in (a, b, c)}
    dirs = {sid: guest_dir(cloud, s) for sid, s in servers.items()}
    assert all(d.is_dir() for d in dirs.values())
    for sid in (a, b, c):
        assert (await api.delete(f"/servers/{sid}")).status == 204
    for sid in (a, b, c):
        await api.wait_status(sid, lambda s: s is None, timeout=60)
        assert qemu_pid(sid) is None
        assert not dirs[sid].exists()
        root = Path(cloud.stack.env["NIMBUS_LIBVIRT_STATE_DIR"])
        assert not [p for p in root.rglob(f"*{sid}*")], list(root.rglob(f"*{sid}*"))
    assert (await api.delete(f"/images/{image_id}")).status == 204


async def _active_image(api: Api, image_id: str) -> dict | None:
    image = (await api.get(f"/images/{image_id}")).json["image"]
    assert image["status"] in ("SAVING", "ACTIVE"), image
    return image if image["status"] == "ACTIVE" else None
