"""What create server hands the guest (sections 2.1.5, 4.4.3, 4.4.21): injected files,
user data, metadata and the config drive reach the hypervisor driver, which the
fake driver records under ``NIMBUS_FAKE_STATE_DIR``; and the personality limits."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import NS, eventually

BANNER = b'"A cloud does not know why it moves in just such a direction and at such a speed..."\n'
KEY_FILE = b"ssh-ed25519 AAAAC3Nza demo@nimbus\n"
SCRIPT = b"#!/bin/sh\necho 'hello from user data' > /tmp/hello\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def _guest(cloud, demo, sid: str) -> Path:
    """Wait for ACTIVE; the directory the fake driver recorded the guest in."""
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    conn = await cloud.db()
    try:
        host = await conn.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
    finally:
        await conn.close()
    guest = Path(cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]) / host / sid
    assert guest.is_dir(), guest
    return guest


async def _delete(demo, sid: str, guest: Path | None = None) -> None:
    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204, r.raw
    await demo.wait_status(sid, lambda s: s is None)
    if guest is not None:
        async def gone():
            return not guest.exists()
        await eventually(gone)


async def test_personality_and_user_data_reach_the_guest_json(demo, cloud):
    r = await demo.boot(name="personal", metadata={"My Server Name": "Apache1"},
                        user_data=b64(SCRIPT),
                        personality=[{"path": "/etc/banner.txt", "contents": b64(BANNER)},
                                     {"path": "/root/.ssh/authorized_keys",
                                      "contents": b64(KEY_FILE)}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    guest = await _guest(cloud, demo, sid)
    assert _tree(guest) == {
        "user_data": SCRIPT,  # decoded
        "files/etc/banner.txt": BANNER,
        "files/root/.ssh/authorized_keys": KEY_FILE,
    }
    server = await demo.server(sid)
    assert server["config_drive"] == ""
    assert server["metadata"] == {"My Server Name": "Apache1"}
    await _delete(demo, sid, guest)


async def test_config_drive_takes_metadata_files_and_user_data_json(demo, cloud):
    metadata = {"id": "25", "My Server Name": "Apache1"}
    r = await demo.boot(name="with-drive", config_drive=True, metadata=metadata,
                        user_data=b64(SCRIPT),
                        personality=[{"path": "/etc/banner.txt", "contents": b64(BANNER)}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    guest = await _guest(cloud, demo, sid)
    tree = _tree(guest)
    assert json.loads(tree.pop("config_drive/meta.js")) == metadata
    # Injected files go to the drive instead of the root file system.
    assert tree == {"user_data": SCRIPT, "config_drive/user_data": SCRIPT,
                    "config_drive/files/etc/banner.txt": BANNER}
    server = await demo.server(sid)
    assert server["config_drive"] == "True"
    listed = [s for s in (await demo.get("/servers/detail")).json["servers"] if s["id"] == sid]
    assert listed[0]["config_drive"] == "True"
    await _delete(demo, sid, guest)


async def test_personality_user_data_and_config_drive_xml(demo, cloud):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<server xmlns="{NS}" name="personal-xml" imageRef="{CIRROS_IMAGE_ID}" '
            f'flavorRef="100" config_drive="true">'
            f'<metadata><meta key="My Server Name">Apache1</meta></metadata>'
            f'<personality><file path="/etc/banner.txt">{b64(BANNER)}</file>'
            f'<file path="/etc/motd">{b64(b"welcome")}</file></personality>'
            f'<user_data>{b64(SCRIPT)}</user_data></server>')
    r = await demo.post("/servers", data=body, xml=True,
                        headers={"Content-Type": "application/xml"})
    assert r.status == 202, r.raw
    sid = r.xml.get("id")
    guest = await _guest(cloud, demo, sid)
    tree = _tree(guest)
    assert json.loads(tree.pop("config_drive/meta.js")) == {"My Server Name": "Apache1"}
    assert tree == {"user_data": SCRIPT, "config_drive/user_data": SCRIPT,
                    "config_drive/files/etc/banner.txt": BANNER,
                    "config_drive/files/etc/motd": b"welcome"}
    r = await demo.get(f"/servers/{sid}.xml")
    assert r.xml.get("config_drive") == "True"
    await _delete(demo, sid, guest)


async def test_limits_are_inclusive_and_paths_stay_inside_the_guest(demo, cloud):
    # Five files (maxPersonality) of 10240 bytes (maxPersonalitySize), one path of 255 bytes.
    long_path = "/" + "p" * 254
    big = bytes(range(256)) * 40
    files = [{"path": f"/data/{i}", "contents": b64(big)} for i in range(3)]
    files += [{"path": long_path, "contents": b64(b"long")},
              {"path": "../../../etc/escape", "contents": b64(b"inside")}]
    r = await demo.boot(name="at-the-limits", personality=files)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    guest = await _guest(cloud, demo, sid)
    assert _tree(guest) == {"files/data/0": big, "files/data/1": big, "files/data/2": big,
                            f"files/{long_path[1:]}": b"long", "files/etc/escape": b"inside"}
    # "../../../etc/escape" climbed no higher than the guest's root.
    run_dir = Path(cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]).parent
    assert list(run_dir.rglob("escape")) == [guest / "files" / "etc" / "escape"]
    await _delete(demo, sid, guest)


async def _refused(demo, status: int, fault: str, **server) -> None:
    r = await demo.boot(name="refused", **server)
    assert r.status == status, r.raw
    assert fault in r.json, r.json
    if status == 413:  # a quota (maxPersonality, maxPersonalitySize): no wait frees it
        assert r.headers["Retry-After"] == "0"


async def test_personality_limits_are_refused(demo):
    one = {"path": "/etc/x", "contents": b64(b"x")}
    await _refused(demo, 413, "overLimit", personality=[one] * 6)
    await _refused(demo, 413, "overLimit",
                   personality=[{"path": "/etc/big", "contents": b64(b"x" * 10241)}])
    await _refused(demo, 400, "badRequest",
                   personality=[{"path": "/etc/bad", "contents": "not base64!"}])
    await _refused(demo, 400, "badRequest",
                   personality=[{"path": "/" + "p" * 255, "contents": b64(b"x")}])
    await _refused(demo, 400, "badRequest", user_data="%%% not base64")
    # None of them left a server behind.
    names = [s["name"] for s in (await demo.get("/servers")).json["servers"]]
    assert "refused" not in names


async def test_personality_limit_in_xml(demo):
    files = "".join(f'<file path="/etc/{i}">{b64(b"x")}</file>' for i in range(6))
    body = (f'<server xmlns="{NS}" name="refused-xml" imageRef="{CIRROS_IMAGE_ID}" '
            f'flavorRef="100"><personality>{files}</personality></server>')
    r = await demo.post("/servers", data=body, xml=True,
                        headers={"Content-Type": "application/xml"})
    assert r.status == 413, r.raw
    assert etree.QName(r.xml).localname == "overLimit" and r.headers["Retry-After"] == "0"
