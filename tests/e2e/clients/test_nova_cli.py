"""The ``nova`` command (python-novaclient): boot by image name with --poll, list, show,
delete, reading its tables."""

from __future__ import annotations

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.client import eventually
from tests.e2e.clients.conftest import (
    CIRROS,
    FLAVOR,
    FLAVOR_ID,
    Clients,
    properties,
    table,
)


async def test_nova_boot_list_show_delete(clients: Clients, demo):
    name = clients.name("nova")
    out = await clients.nova("boot", "--image", CIRROS, "--flavor", FLAVOR_ID, "--poll", name)
    booted = properties(out)
    sid = booted["id"]
    assert booted["name"] == name
    assert "Finished" in out
    try:
        api = await demo.server(sid)
        assert api["status"] == "ACTIVE"       # --poll returned once it was
        rows = [r for r in table(await clients.nova("list", "--name", name)) if r["ID"] == sid]
        assert [(r["Name"], r["Status"], r["Power State"]) for r in rows] == [
            (name, "ACTIVE", "Running")]
        fixed = [a["addr"] for a in api["addresses"]["private"]]
        assert rows[0]["Networks"] == "private=" + ", ".join(fixed)
        shown = properties(await clients.nova("show", name))
        assert (shown["id"], shown["name"], shown["status"]) == (sid, name, "ACTIVE")
        assert shown["image"] == f"{CIRROS} ({CIRROS_IMAGE_ID})"
        assert shown["flavor"] == f"{FLAVOR} ({FLAVOR_ID})"
        assert shown["tenant_id"] == demo.project_id
        assert shown["private network"] == ", ".join(fixed)
    finally:
        out = await clients.nova("delete", sid)
    assert f"Request to delete server {sid} has been accepted." in out
    await eventually(lambda: _gone(demo, sid), timeout=30)
    assert [r for r in table(await clients.nova("list", "--name", name))] == []


async def _gone(demo, sid: str) -> bool:
    return await demo.server(sid) is None
