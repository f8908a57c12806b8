"""Server lists (4.4.1.5, 4.4.1.7): pages, changes-since, filters; update (4.4.1.9).

The stack is shared by the whole session: every test makes its own servers
with names unique to it and filters by them, never assuming an empty project.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID, DEBIAN_IMAGE_ID, UBUNTU_IMAGE_ID
from tests.e2e.acting import CORE_KEYS
from tests.e2e.client import ATOM, NS, eventually
from tests.e2e.paging import fault_name, ids_of, next_href, put, walk


async def _gone(api, sids) -> None:
    async def all_gone():
        return all([(await api.get(f"/servers/{sid}")).status == 404 for sid in sids])
    await eventually(all_gone, timeout=60)


@pytest.fixture(scope="module")
async def fleet(demo, cloud):
    """Four ACTIVE servers of demo: two cirros on flavor 100, ubuntu on 100,
    debian on 101; all with one created_at, so only the id orders them."""
    prefix = f"sl{uuid.uuid4().hex[:8]}"
    plan = [("a0", CIRROS_IMAGE_ID, "100"), ("a1", CIRROS_IMAGE_ID, "100"),
            ("b2", UBUNTU_IMAGE_ID, "100"), ("c3", DEBIAN_IMAGE_ID, "101")]
    servers: dict[str, str] = {}
    try:
        for suffix, image, flavor in plan:
            r = await demo.boot(name=f"{prefix}-{suffix}", image=str(image), flavor=flavor)
            assert r.status == 202, r.raw
            servers[suffix] = r.json["server"]["id"]
        for sid in servers.values():
            await demo.wait_status(sid, lambda s: s and s["status"] in ("ACTIVE", "ERROR"))
        conn = await cloud.db()
        try:
            await conn.execute("UPDATE servers SET created_at = now() - interval '1 hour'"
                               " WHERE id = ANY($1::uuid[])", list(servers.values()))
        finally:
            await conn.close()
        yield {"prefix": prefix, "ids": servers,
               # newest first; created_at ties, so id DESC (uuid order is hex order)
               "order": sorted(servers.values(), reverse=True)}
    finally:
        for sid in servers.values():
            await demo.delete(f"/servers/{sid}")
        await _gone(demo, servers.values())


async def test_fleet_is_active(fleet, demo):
    r = await demo.get(f"/servers/detail?name=^{fleet['prefix']}-")
    assert {s["status"] for s in r.json["servers"]} == {"ACTIVE"}, r.json


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
@pytest.mark.parametrize("collection", ["/servers", "/servers/detail"])
async def test_walk_filtered_list_by_two(fleet, demo, cloud, collection, xml):
    ids, sizes = await walk(demo, f"{collection}?name=^{fleet['prefix']}-&limit=2", "servers",
                            xml=xml)
    assert ids == fleet["order"]
    # Full pages carry a next link; the walk ends on an empty page.
    assert sizes == [2, 2, 0]


async def test_next_link_keeps_filters_and_path(fleet, demo, cloud):
    r = await demo.get(f"/servers/detail?name=^{fleet['prefix']}-&limit=3")
    assert ids_of(r, "servers") == fleet["order"][:3]
    href = next_href(r, "servers")
    expected = (f"{cloud.api_url}/v2/{demo.project_id}/servers/detail?"
                f"name={quote('^' + fleet['prefix'] + '-', safe='')}&limit=3"
                f"&marker={fleet['order'][2]}")
    assert href == expected
    r = await demo.get(f"/servers.xml?name=^{fleet['prefix']}-&limit=1")
    (link,) = [e for e in r.xml.findall(f"{{{ATOM}}}link")]
    assert link.get("rel") == "next" and f"marker={fleet['order'][0]}" in link.get("href")
    # A short page has no link.
    r = await demo.get(f"/servers?name=^{fleet['prefix']}-&limit=5")
    assert "servers_links" not in r.json and len(r.json["servers"]) == 4


async def test_walk_whole_list_newest_first(fleet, demo):
    ids, _ = await walk(demo, "/servers/detail?limit=2", "servers")
    assert len(ids) == len(set(ids)), "a server was listed twice"
    mine = [sid for sid in ids if sid in fleet["order"]]
    assert mine == fleet["order"]
    r = await demo.get("/servers/detail")
    created = [s["created"] for s in r.json["servers"]]
    assert created == sorted(created, reverse=True)
    # Without a limit the first page is the whole (small) list, in the same order.
    full = [s["id"] for s in r.json["servers"]]
    assert [sid for sid in full if sid in ids] == [sid for sid in ids if sid in full]


async def test_unknown_marker_is_400(fleet, demo, alt):
    r = await alt.boot(name=f"{fleet['prefix']}-alt")
    alt_sid = r.json["server"]["id"]
    try:
        for marker in (str(uuid.uuid4()), "not-a-uuid", alt_sid):
            r = await demo.get(f"/servers?marker={marker}")
            assert r.status == 400 and fault_name(r) == "badRequest", (marker, r.raw)
            assert marker in r.json["badRequest"]["message"]
        r = await demo.get(f"/servers/detail.xml?marker={uuid.uuid4()}&limit=2")
        assert r.status == 400 and etree.QName(r.xml) == etree.QName(NS, "badRequest")
        # The owner's own server is a fine marker.
        r = await alt.get(f"/servers?marker={alt_sid}")
        assert r.status == 200 and alt_sid not in ids_of(r, "servers")
    finally:
        await alt.delete(f"/servers/{alt_sid}")
        await _gone(alt, [alt_sid])


@pytest.mark.parametrize("limit", ["-1", "two", "1.5", ""])
async def test_bad_limit_is_400(demo, limit):
    r = await demo.get(f"/servers?limit={limit}")
    assert r.status == 400 and fault_name(r) == "badRequest", r.raw


async def test_limit_above_1000_is_1000(alt, cloud):
    """1001 rows written straight into alt's project (removed again): a page holds 1000."""
    tag = f"capfake-{uuid.uuid4().hex[:8]}"
    conn = await cloud.db()
    try:
        await conn.execute(
            "INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,"
            " reservation_id) SELECT gen_random_uuid(), $1, 'fake', $2 || '-' || g, '100',"
            " '{}'::jsonb, 'active', 'r-fake' FROM generate_series(1, 1001) g",
            alt.project_id, tag)
        for query in ("limit=5000", "limit=1000", ""):
            r = await alt.get(f"/servers?name=^{tag}-&{query}")
            assert r.status == 200
            assert len(r.json["servers"]) == 1000, query
            assert next_href(r, "servers") is not None
        ids, sizes = await walk(alt, f"/servers?name=^{tag}-&limit=1001", "servers")
        assert sizes == [1000, 1] and len(set(ids)) == 1001
    finally:
        await conn.execute("DELETE FROM servers WHERE project_id = $1 AND name LIKE $2",
                           alt.project_id, f"{tag}-%")
        await conn.close()


# ---- changes-since --------------------------------------------------------------------

def _iso(ts: datetime, offset_hours: int = 0) -> str:
    zone = "Z" if not offset_hours else f"+{offset_hours:02d}:00"
    return (ts + timedelta(hours=offset_hours)).strftime("%Y-%m-%dT%H:%M:%S") + zone


async def test_changes_since_shows_a_deleted_server_as_deleted(demo, alt, cloud):
    name = f"gone-{uuid.uuid4().hex[:8]}"
    r = await demo.boot(name=name)
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    conn = await cloud.db()
    try:
        before = (await conn.fetchval("SELECT now()")).astimezone(UTC)
    finally:
        await conn.close()
    assert (await demo.delete(f"/servers/{sid}")).status == 204
    await _gone(demo, [sid])

    since = _iso(before.replace(microsecond=0))
    r = await demo.get(f"/servers/detail?changes-since={since}")
    assert r.status == 200
    (server,) = [s for s in r.json["servers"] if s["id"] == sid]
    assert server["status"] == "DELETED" and server["name"] == name
    # The same instant written with an offset (the "+" escaped), and the spec's "Z+01:00".
    for written in (quote(_iso(before.replace(microsecond=0), 1)),
                    quote(_iso(before.replace(microsecond=0), 1).replace("+", "Z+"))):
        r = await demo.get(f"/servers?changes-since={written}")
        assert sid in ids_of(r, "servers"), written
    r = await demo.get(f"/servers/detail.xml?changes-since={since}&status=DELETED")
    statuses = {s.get("id"): s.get("status") for s in r.xml.findall(f"{{{NS}}}server")}
    assert statuses[sid] == "DELETED" and set(statuses.values()) == {"DELETED"}
    # Without changes-since, after it, or for another project: not listed.
    assert sid not in ids_of(await demo.get("/servers/detail"), "servers")
    assert sid not in ids_of(await demo.get("/servers?status=DELETED"), "servers")
    later = _iso(datetime.now(UTC) + timedelta(days=1))
    r = await demo.get(f"/servers/detail?changes-since={later}")
    assert r.status == 200 and sid not in ids_of(r, "servers")
    assert sid not in ids_of(await alt.get(f"/servers?changes-since={since}"), "servers")
    assert (await demo.get(f"/servers/{sid}")).status == 404


async def test_changes_since_lists_only_changed_servers(fleet, demo, cloud):
    conn = await cloud.db()
    try:
        await conn.execute("UPDATE servers SET updated_at = now() - interval '1 hour'"
                           " WHERE id = ANY($1::uuid[])", fleet["order"])
        now = (await conn.fetchval("SELECT clock_timestamp()")).astimezone(UTC)
    finally:
        await conn.close()
    since = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    first = fleet["ids"]["a0"]
    r = await put(demo, f"/servers/{first}", json={"server": {"name": f"{fleet['prefix']}-a0"}})
    assert r.status == 200
    r = await demo.get(f"/servers?changes-since={since}&name=^{fleet['prefix']}-")
    assert ids_of(r, "servers") == [first]


@pytest.mark.parametrize("value", ["yesterday", "2011-13-45T00:00:00", "2011-01-24T17:08:00X"])
async def test_bad_changes_since_is_400(demo, value):
    r = await demo.get(f"/servers/detail?changes-since={value}")
    assert r.status == 400 and fault_name(r) == "badRequest", r.raw


# ---- filters --------------------------------------------------------------------------

async def _names(demo, query: str, fleet) -> list[str]:
    r = await demo.get(f"/servers?{query}")
    assert r.status == 200, r.raw
    return [s["name"].rpartition("-")[2] for s in r.json["servers"]
            if s["name"].startswith(fleet["prefix"])]


async def test_name_filter_is_a_regex(fleet, demo):
    p = fleet["prefix"]
    assert sorted(await _names(demo, f"name=^{p}-a", fleet)) == ["a0", "a1"]
    assert sorted(await _names(demo, f"name={p[2:]}-[bc]", fleet)) == ["b2", "c3"]
    assert await _names(demo, f"name={p}-c3$", fleet) == ["c3"]
    # Case-sensitive.
    assert await _names(demo, f"name={p.upper()}", fleet) == []
    r = await demo.get(f"/servers?name={quote('(')}")
    assert r.status == 400 and fault_name(r) == "badRequest"
    r = await demo.get(f"/servers/detail.xml?name={quote('[z-a]')}")
    assert r.status == 400 and etree.QName(r.xml).localname == "badRequest"


async def test_image_and_flavor_filters(fleet, demo, cloud):
    base = f"name=^{fleet['prefix']}-"
    assert sorted(await _names(demo, f"{base}&image={CIRROS_IMAGE_ID}", fleet)) == ["a0", "a1"]
    link = f"{cloud.api_url}/{demo.project_id}/images/{UBUNTU_IMAGE_ID}"
    assert await _names(demo, f"{base}&image={quote(link, safe='')}", fleet) == ["b2"]
    assert await _names(demo, f"{base}&image=not-an-image", fleet) == []
    assert await _names(demo, f"{base}&flavor=101", fleet) == ["c3"]
    link = f"{cloud.api_url}/v2/{demo.project_id}/flavors/100"
    assert sorted(await _names(demo, f"{base}&flavor={quote(link, safe='')}", fleet)) == [
        "a0", "a1", "b2"]
    assert await _names(demo, f"{base}&flavor=nope", fleet) == []
    # Filters combine with paging.
    ids, sizes = await walk(demo, f"/servers/detail?{base}&flavor=100&limit=2", "servers")
    assert ids == [sid for sid in fleet["order"] if sid != fleet["ids"]["c3"]]
    assert sizes == [2, 1]


async def test_status_filter(fleet, demo, cloud):
    base = f"name=^{fleet['prefix']}-"
    assert sorted(await _names(demo, f"{base}&status=ACTIVE", fleet)) == ["a0", "a1", "b2", "c3"]
    assert sorted(await _names(demo, f"{base}&status=active", fleet)) == ["a0", "a1", "b2", "c3"]
    # Unknown status: an empty list, as Nova answers.
    r = await demo.get(f"/servers?{base}&status=FROBNICATED")
    assert r.status == 200 and r.json["servers"] == []
    # Rows in other states, written straight into the table for the moment of the test.
    conn = await cloud.db()
    fakes = {"bx": ("building", "networking"), "sx": ("stopped", None), "ex": ("error", None)}
    fake_ids = {k: uuid.uuid4() for k in fakes}
    try:
        for key, (vm, task) in fakes.items():
            await conn.execute(
                "INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,"
                " task_state, reservation_id) VALUES ($1, $2, 'fake', $3, '100', '{}', $4, $5,"
                " 'r-fake')", fake_ids[key], demo.project_id, f"{fleet['prefix']}-{key}", vm, task)
        assert await _names(demo, f"{base}&status=BUILD", fleet) == ["bx"]
        assert await _names(demo, f"{base}&status=BUILD(networking)", fleet) == ["bx"]
        assert await _names(demo, f"{base}&status=BUILD(spawning)", fleet) == []
        assert await _names(demo, f"{base}&status=SHUTOFF", fleet) == ["sx"]
        assert await _names(demo, f"{base}&status=ERROR", fleet) == ["ex"]
        r = await demo.get(f"/servers/detail?{base}&status=BUILD")
        assert [s["status"] for s in r.json["servers"]] == ["BUILD(networking)"]
    finally:
        await conn.execute("DELETE FROM servers WHERE id = ANY($1::uuid[])", list(fake_ids.values()))
        await conn.close()


async def test_other_project_lists_none_of_them(fleet, alt):
    for query in ("", f"?name=^{fleet['prefix']}-", "?changes-since=2000-01-01T00:00:00Z"):
        ids = ids_of(await alt.get(f"/servers/detail{query}"), "servers")
        assert not set(ids) & set(fleet["order"])


# ---- update -----------------------------------------------------------------------------

@pytest.fixture
async def lone(demo):
    r = await demo.boot(name=f"upd-{uuid.uuid4().hex[:8]}")
    sid = r.json["server"]["id"]
    try:
        yield sid
    finally:
        await demo.delete(f"/servers/{sid}")
        await _gone(demo, [sid])


async def test_update_name_json(lone, demo):
    new = f"renamed-{uuid.uuid4().hex[:6]}"
    r = await put(demo, f"/servers/{lone}", json={"server": {"name": f"  {new} "}})
    assert r.status == 200, r.raw
    server = r.json["server"]
    assert server["id"] == lone and server["name"] == new
    # The server as the spec's example shows it: no extension attribute.
    assert set(server) == CORE_KEYS
    assert (await demo.server(lone))["name"] == new
    assert lone in ids_of(await demo.get(f"/servers?name=^{new}$"), "servers")
    r = await put(demo, f"/servers/{lone}",
                  json={"server": {"accessIPv4": "192.0.2.7", "accessIPv6": "2001:db8::7"}})
    assert r.status == 200
    assert (r.json["server"]["accessIPv4"], r.json["server"]["accessIPv6"]) == (
        "192.0.2.7", "2001:db8::7")
    assert r.json["server"]["name"] == new


async def test_update_answers_what_the_specs_example_shows(demo):
    r = await demo.boot(name=f"upd-core-{uuid.uuid4().hex[:6]}")
    sid = r.json["server"]["id"]
    try:
        await demo.wait_status(sid, lambda s: s is not None and s["status"] == "ACTIVE")
        ips = (await demo.get(f"/servers/{sid}/ips")).json["addresses"]
        assert ips and "OS-EXT-STS:vm_state" in await demo.server(sid)
        r = await put(demo, f"/servers/{sid}", json={"server": {"name": "core-json"}})
        assert r.status == 200, r.raw
        assert set(r.json["server"]) == CORE_KEYS
        # Addresses as the example (and .../ips) show them: version and addr only.
        assert r.json["server"]["addresses"] == ips
        r = await put(demo, f"/servers/{sid}", data="<server><name>core-xml</name></server>",
                      xml=True, headers={"Content-Type": "application/xml"})
        assert r.status == 200, r.raw
        assert set(r.xml.attrib) == {"status", "updated", "hostId", "name", "created", "userId",
                                     "tenantId", "accessIPv4", "accessIPv6", "progress", "id"}
        assert [etree.QName(c).localname for c in r.xml] == [
            "image", "flavor", "metadata", "addresses", "link", "link"]
        assert not [p for p in r.xml.nsmap if p not in (None, "atom")], r.raw
        (network,) = r.xml.find(f"{{{NS}}}addresses")
        assert {network.get("id"): [dict(ip.attrib) for ip in network]} == {
            net: [{"version": str(ip["version"]), "addr": ip["addr"]} for ip in addrs]
            for net, addrs in ips.items()}
    finally:
        await demo.delete(f"/servers/{sid}")
        await _gone(demo, [sid])


async def test_update_name_xml(lone, demo):
    body = f'<?xml version="1.0" encoding="UTF-8"?><server xmlns="{NS}"><name>xml-name</name></server>'
    r = await put(demo, f"/servers/{lone}", data=body, xml=True,
                  headers={"Content-Type": "application/xml"})
    assert r.status == 200, r.raw
    assert etree.QName(r.xml) == etree.QName(NS, "server")
    assert r.xml.get("name") == "xml-name" and r.xml.get("id") == lone
    assert r.xml.find(f"{{{NS}}}flavor") is not None
    # The attribute form and a JSON answer to an XML body.
    r = await put(demo, f"/servers/{lone}.json", data='<server name="attr-name"/>',
                  headers={"Content-Type": "application/xml"})
    assert r.status == 200 and r.json["server"]["name"] == "attr-name"


@pytest.mark.parametrize(("kw", "status"), [
    ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400),
    ({"json": {"name": "x"}}, 400),
    ({"json": {"server": {}}}, 400),
    ({"json": {"server": {"name": "   "}}}, 400),
    ({"json": {"server": {"name": ""}}}, 400),
    ({"json": {"server": {"name": "x" * 256}}}, 400),
    ({"json": {"server": {"name": 42}}}, 400),
    ({"json": {"server": {"accessIPv4": "2001:db8::1"}}}, 400),
    ({"json": {"server": {"accessIPv6": "300.1.1.1"}}}, 400),
    ({"data": b"<server><name>  </name></server>", "headers": {"Content-Type": "application/xml"}}, 400),
])
async def test_bad_update_is_400(lone, demo, kw, status):
    r = await put(demo, f"/servers/{lone}", **kw)
    assert r.status == status, r.raw
    assert fault_name(r) == "badRequest"
    assert (await demo.server(lone))["name"].startswith("upd-")


async def test_update_someone_elses_or_missing_server_is_404(lone, demo, alt):
    body = {"server": {"name": "stolen"}}
    r = await put(alt, f"/servers/{lone}", json=body)
    assert r.status == 404 and fault_name(r) == "itemNotFound"
    r = await put(alt, f"/servers/{lone}.xml", json=body)
    assert r.status == 404 and etree.QName(r.xml).localname == "itemNotFound"
    assert (await demo.server(lone))["name"].startswith("upd-")
    for missing in (uuid.uuid4(), "nope"):
        r = await put(demo, f"/servers/{missing}", json=body)
        assert r.status == 404, r.raw


async def test_update_deleted_server_is_404(demo):
    r = await demo.boot(name=f"upd-del-{uuid.uuid4().hex[:6]}")
    sid = r.json["server"]["id"]
    assert (await demo.delete(f"/servers/{sid}")).status == 204
    # Being deleted, then deleted: 404 either way.
    r = await put(demo, f"/servers/{sid}", json={"server": {"name": "late"}})
    assert r.status == 404
    await _gone(demo, [sid])
    r = await put(demo, f"/servers/{sid}", json={"server": {"name": "late"}})
    assert r.status == 404


async def test_concurrent_lists_while_paging(fleet, demo):
    """Pages asked at once agree with each other (no shared state between requests)."""
    pages = await asyncio.gather(*[
        demo.get(f"/servers?name=^{fleet['prefix']}-&limit=2") for _ in range(5)])
    assert {tuple(ids_of(p, "servers")) for p in pages} == {tuple(fleet["order"][:2])}
