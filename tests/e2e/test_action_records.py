"""Every operation on a server is recorded as an instance action with its request id,
including the ones the API finishes itself (floating IPs, security groups)."""

from __future__ import annotations

import uuid

from tests.e2e.client import Api


async def test_network_and_group_actions_are_recorded(demo: Api) -> None:
    r = await demo.boot(name=f"rec-{uuid.uuid4().hex[:6]}")
    sid = r.json["server"]["id"]
    expected = {r.headers["X-Compute-Request-Id"]: "create"}
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    fip = (await demo.post("/os-floating-ips")).json["floating_ip"]
    group = f"rec-{uuid.uuid4().hex[:6]}"
    r = await demo.post("/os-security-groups",
                        json={"security_group": {"name": group, "description": "records"}})
    assert r.status in (200, 202), r.raw
    gid = r.json["security_group"]["id"]
    try:
        for action, body in (
            ("addFloatingIp", {"address": fip["ip"]}),
            ("removeFloatingIp", {"address": fip["ip"]}),
            ("addSecurityGroup", {"name": group}),
            ("removeSecurityGroup", {"name": group}),
        ):
            r = await demo.post(f"/servers/{sid}/action", json={action: body})
            assert r.status == 202, (action, r.raw)
            expected[r.headers["X-Compute-Request-Id"]] = action
        listed = (await demo.get(f"/servers/{sid}/os-instance-actions")).json["instanceActions"]
        recorded = {a["request_id"]: a["action"] for a in listed}
        assert recorded == expected
        one = next(rid for rid, a in expected.items() if a == "addSecurityGroup")
        got = (await demo.get(f"/servers/{sid}/os-instance-actions/{one}")).json
        assert got["instanceAction"]["action"] == "addSecurityGroup"
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, lambda s: s is None)
        await demo.delete(f"/os-floating-ips/{fip['id']}")
        await demo.delete(f"/os-security-groups/{gid}")
