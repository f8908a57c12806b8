"""Images (4.4.1.22-25) and flavors (4.4.1.32-34): filters, pages, changes-since,
delete, and what one project may see and do with another's images."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID, FLAVORS, UBUNTU_IMAGE_ID
from tests.e2e.client import NS
from tests.e2e.paging import fault_name, ids_of, next_href, walk


@pytest.fixture
async def snaps(demo, alt, cloud):
    """Private images written into the table (no upload exists): three of demo's
    (one SAVING, snapshots of one server) and one of alt's; removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    server_id = uuid.uuid4()
    rows = {
        "d1": (demo.project_id, "ACTIVE", server_id, timedelta(hours=-1)),
        "d2": (demo.project_id, "ACTIVE", server_id, timedelta(hours=-1)),  # d1's created_at
        "d3": (demo.project_id, "SAVING", None, timedelta(minutes=-10)),
        "a1": (alt.project_id, "ACTIVE", None, timedelta(minutes=-5)),
    }
    ids = {k: uuid.uuid4() for k in rows}
    conn = await cloud.db()
    try:
        now = await conn.fetchval("SELECT now()")
        for key, (owner, status, sid, age) in rows.items():
            await conn.execute(
                "INSERT INTO images (id, name, status, visibility, owner_project_id, server_id,"
                " metadata, size_bytes, created_at, updated_at)"
                " VALUES ($1, $2, $3, 'private', $4, $5, $6::jsonb, 4096, $7, $7)",
                ids[key], f"snap-{tag}-{key}", status, owner, sid,
                json.dumps({"image_type": "snapshot"}), now + age)
        yield {"tag": tag, "server": str(server_id), **{k: str(v) for k, v in ids.items()}}
    finally:
        await conn.execute("DELETE FROM images WHERE id = ANY($1::uuid[])", list(ids.values()))
        await conn.close()


async def test_private_images_are_their_owners(snaps, demo, alt):
    demo_ids = ids_of(await demo.get("/images/detail"), "images")
    assert {snaps["d1"], snaps["d2"], snaps["d3"], str(UBUNTU_IMAGE_ID)} <= set(demo_ids)
    assert snaps["a1"] not in demo_ids
    alt_ids = ids_of(await alt.get("/images"), "images")
    assert snaps["a1"] in alt_ids and not {snaps["d1"], snaps["d2"], snaps["d3"]} & set(alt_ids)
    r = await alt.get(f"/images/{snaps['d1']}")
    assert r.status == 404 and fault_name(r) == "itemNotFound"
    r = await demo.get(f"/images/{snaps['d3']}")
    assert r.json["image"]["status"] == "SAVING" and r.json["image"]["OS-EXT-IMG-SIZE:size"] == 4096
    r = await demo.get(f"/images/{snaps['d1']}", xml=True)
    assert r.xml.find(f"{{{NS}}}server").get("id") == snaps["server"]


async def test_image_filters(snaps, demo, cloud):
    tag = snaps["tag"]
    r = await demo.get(f"/images?name=snap-{tag}-d3")
    assert ids_of(r, "images") == [snaps["d3"]]
    # The name matches exactly, not as a pattern.
    assert ids_of(await demo.get(f"/images?name=snap-{tag}"), "images") == []
    r = await demo.get("/images/detail?status=SAVING")
    assert snaps["d3"] in ids_of(r, "images")
    assert {i["status"] for i in r.json["images"]} == {"SAVING"}
    r = await demo.get("/images/detail?status=active")
    got = ids_of(r, "images")
    assert {snaps["d1"], snaps["d2"], str(CIRROS_IMAGE_ID)} <= set(got) and snaps["d3"] not in got
    both = sorted([snaps["d1"], snaps["d2"]], reverse=True)
    assert ids_of(await demo.get(f"/images?server={snaps['server']}"), "images") == both
    link = f"{cloud.api_url}/v2/{demo.project_id}/servers/{snaps['server']}"
    assert ids_of(await demo.get(f"/images?server={quote(link, safe='')}"), "images") == both
    assert ids_of(await demo.get(f"/images?server={uuid.uuid4()}"), "images") == []
    assert ids_of(await demo.get("/images?server=nope"), "images") == []
    r = await demo.get(f"/images.xml?name=snap-{tag}-d1")
    assert [e.get("name") for e in r.xml.findall(f"{{{NS}}}image")] == [f"snap-{tag}-d1"]


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_walk_images_by_two(snaps, demo, xml):
    full = ids_of(await demo.get("/images/detail"), "images")
    ids, sizes = await walk(demo, "/images/detail?limit=2", "images", xml=xml)
    assert ids == full and len(set(ids)) == len(ids)
    assert all(size == 2 for size in sizes[:-1]) and sizes[-1] < 2
    # Newest first; d1 and d2 share a created_at, so the id orders them.
    mine = [i for i in ids if i in (snaps["d1"], snaps["d2"], snaps["d3"])]
    assert mine == [snaps["d3"], *sorted([snaps["d1"], snaps["d2"]], reverse=True)]
    r = await demo.get("/images/detail")
    created = [i["created"] for i in r.json["images"]]
    assert created == sorted(created, reverse=True)


async def test_image_marker_must_be_visible(snaps, demo, alt):
    r = await demo.get(f"/images?marker={snaps['d3']}&limit=1")
    assert r.status == 200 and len(r.json["images"]) == 1
    assert next_href(r, "images").endswith(f"marker={r.json['images'][0]['id']}")
    for marker in (snaps["a1"], str(uuid.uuid4()), "nope"):
        r = await demo.get(f"/images/detail?marker={marker}")
        assert r.status == 400 and fault_name(r) == "badRequest", marker
    r = await alt.get(f"/images.xml?marker={snaps['d1']}")
    assert r.status == 400 and etree.QName(r.xml).localname == "badRequest"
    r = await demo.get("/images?limit=-1")
    assert r.status == 400


async def test_delete_own_image_then_polled_as_deleted(snaps, demo, cloud):
    conn = await cloud.db()
    try:
        since = (await conn.fetchval("SELECT clock_timestamp()")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    finally:
        await conn.close()
    r = await demo.delete(f"/images/{snaps['d2']}")
    assert r.status == 204 and r.raw == b""
    assert (await demo.get(f"/images/{snaps['d2']}")).status == 404
    assert snaps["d2"] not in ids_of(await demo.get("/images/detail"), "images")
    r = await demo.get(f"/images/detail?changes-since={since}")
    (image,) = r.json["images"]
    assert image["id"] == snaps["d2"] and image["status"] == "DELETED"
    r = await demo.get(f"/images/detail.xml?changes-since={since}")
    assert [(e.get("id"), e.get("status")) for e in r.xml.findall(f"{{{NS}}}image")] == [
        (snaps["d2"], "DELETED")]
    assert ids_of(await demo.get(f"/images?changes-since={since}&status=DELETED"), "images") == [
        snaps["d2"]]
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ids_of(await demo.get(f"/images?changes-since={later}"), "images") == []
    # Twice is 404; a deleted image cannot boot a server.
    assert (await demo.delete(f"/images/{snaps['d2']}")).status == 404
    r = await demo.boot(name="from-deleted", image=snaps["d2"])
    assert r.status == 400, r.raw


async def test_delete_public_image_is_403(demo, cloud):
    r = await demo.delete(f"/images/{UBUNTU_IMAGE_ID}")
    assert r.status == 403 and fault_name(r) == "forbidden", r.raw
    r = await demo.delete(f"/images/{UBUNTU_IMAGE_ID}.xml")
    assert r.status == 403 and etree.QName(r.xml) == etree.QName(NS, "forbidden")
    admin = await cloud.login("admin", "admin", "admin")
    assert (await admin.delete(f"/images/{UBUNTU_IMAGE_ID}")).status == 403
    assert (await demo.get(f"/images/{UBUNTU_IMAGE_ID}")).json["image"]["status"] == "ACTIVE"


async def test_delete_someone_elses_image_is_404(snaps, demo, alt):
    r = await alt.delete(f"/images/{snaps['d1']}")
    assert r.status == 404 and fault_name(r) == "itemNotFound"
    assert (await demo.get(f"/images/{snaps['d1']}")).status == 200
    assert (await demo.delete(f"/images/{uuid.uuid4()}")).status == 404
    assert (await demo.delete("/images/nope")).status == 404


@pytest.mark.parametrize("value", ["nope", "2011-02-30T00:00:00"])
async def test_image_bad_changes_since_is_400(demo, value):
    r = await demo.get(f"/images/detail?changes-since={value}")
    assert r.status == 400 and fault_name(r) == "badRequest"


# ---- flavors ------------------------------------------------------------------------------

ALL_FLAVORS = sorted(f[0] for f in FLAVORS)


async def test_flavor_filters(demo):
    r = await demo.get("/flavors/detail?minRam=4096")
    got = r.json["flavors"]
    assert [f["id"] for f in got] == sorted(f[0] for f in FLAVORS if f[2] >= 4096)
    assert all(f["ram"] >= 4096 for f in got) and "102" in [f["id"] for f in got]
    r = await demo.get("/flavors?minDisk=30")
    assert ids_of(r, "flavors") == sorted(f[0] for f in FLAVORS if f[3] >= 30)
    assert "100" not in ids_of(r, "flavors")
    r = await demo.get("/flavors?minRam=20000&minDisk=30")
    assert ids_of(r, "flavors") == sorted(f[0] for f in FLAVORS if f[2] >= 20000 and f[3] >= 30)
    assert ids_of(await demo.get("/flavors?minRam=9999999"), "flavors") == []
    r = await demo.get("/flavors.xml?minRam=61440")
    assert [e.get("id") for e in r.xml.findall(f"{{{NS}}}flavor")] == ["110", "114", "205"]


@pytest.mark.parametrize("query", ["minRam=abc", "minRam=-1", "minDisk=1.5", "minDisk=",
                                   "limit=-1", "limit=x"])
async def test_bad_flavor_filters_are_400(demo, query):
    r = await demo.get(f"/flavors/detail?{query}")
    assert r.status == 400 and fault_name(r) == "badRequest", r.raw


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_walk_flavors_by_two(demo, xml):
    ids, sizes = await walk(demo, "/flavors/detail?limit=2", "flavors", xml=xml)
    assert ids == ALL_FLAVORS
    assert sizes == [2] * (len(ALL_FLAVORS) // 2) + [len(ALL_FLAVORS) % 2]
    r = await demo.get("/flavors?limit=2&marker=101")
    assert ids_of(r, "flavors") == ["102", "103"]
    assert next_href(r, "flavors").endswith("/flavors?limit=2&marker=103")
    ids, _ = await walk(demo, "/flavors?minRam=16384&limit=1", "flavors")
    assert ids == sorted(f[0] for f in FLAVORS if f[2] >= 16384)


async def test_flavor_unknown_marker_is_400(demo):
    for marker in ("999", "nope"):
        r = await demo.get(f"/flavors?marker={marker}")
        assert r.status == 400 and fault_name(r) == "badRequest"
        assert marker in r.json["badRequest"]["message"]
