"""Server metadata (4.4.1.11-16) and image metadata (4.4.1.26-31), JSON and XML,
their faults (404, 400, 403, 413), project isolation and concurrent changes."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from lxml import etree

from services.api.catalog import UBUNTU_IMAGE_ID
from tests.e2e.client import NS, eventually
from tests.e2e.paging import fault_name, put

XML_BODY = {"Content-Type": "application/xml"}


def _xml_meta(r) -> dict[str, str]:
    assert etree.QName(r.xml) == etree.QName(NS, "metadata"), r.raw
    return {m.get("key"): m.text or "" for m in r.xml.findall(f"{{{NS}}}meta")}


async def _gone(api, sid) -> None:
    async def gone():
        return (await api.get(f"/servers/{sid}")).status == 404
    await eventually(gone, timeout=60)


@pytest.fixture
async def server(demo):
    r = await demo.boot(name=f"md-{uuid.uuid4().hex[:8]}", metadata={"a": "1"})
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    try:
        yield sid
    finally:
        await demo.delete(f"/servers/{sid}")
        await _gone(demo, sid)


# ---- server metadata: the six operations ----------------------------------------------

async def test_server_metadata_json(server, demo):
    base = f"/servers/{server}/metadata"
    r = await demo.get(base)
    assert r.status == 200 and r.json == {"metadata": {"a": "1"}}

    r = await demo.post(base, json={"metadata": {"b": "2", "a": "x"}})
    assert r.status == 200 and r.json == {"metadata": {"a": "x", "b": "2"}}

    r = await put(demo, base, json={"metadata": {"c": "3", "d": "4"}})
    assert r.status == 200 and r.json == {"metadata": {"c": "3", "d": "4"}}
    assert (await demo.get(base)).json == {"metadata": {"c": "3", "d": "4"}}
    assert (await demo.server(server))["metadata"] == {"c": "3", "d": "4"}

    r = await demo.get(f"{base}/c")
    assert r.status == 200 and r.json == {"meta": {"c": "3"}}

    r = await put(demo, f"{base}/e", json={"meta": {"e": "5"}})
    assert r.status == 200 and r.json == {"meta": {"e": "5"}}
    r = await put(demo, f"{base}/c", json={"meta": {"c": "33"}})
    assert r.status == 200 and r.json == {"meta": {"c": "33"}}
    assert (await demo.get(base)).json["metadata"] == {"c": "33", "d": "4", "e": "5"}

    r = await demo.delete(f"{base}/d")
    assert r.status == 204 and r.raw == b""
    assert (await demo.get(base)).json["metadata"] == {"c": "33", "e": "5"}
    for missing in (demo.get(f"{base}/d"), demo.delete(f"{base}/d")):
        r = await missing
        assert r.status == 404 and fault_name(r) == "itemNotFound"
        assert r.json["itemNotFound"]["message"] == "Metadata item was not found"

    r = await put(demo, base, json={"metadata": {}})
    assert r.status == 200 and r.json == {"metadata": {}}


async def test_server_metadata_xml(server, demo):
    base = f"/servers/{server}/metadata"
    r = await demo.get(base, xml=True)
    assert r.status == 200 and _xml_meta(r) == {"a": "1"}

    body = f'<metadata xmlns="{NS}"><meta key="b">two words</meta><meta key="c">3</meta></metadata>'
    r = await demo.post(base, data=body, xml=True, headers=XML_BODY)
    assert r.status == 200 and _xml_meta(r) == {"a": "1", "b": "two words", "c": "3"}

    body = '<?xml version="1.0"?><metadata><meta key="only">1</meta></metadata>'
    r = await put(demo, f"{base}.xml", data=body, headers=XML_BODY)
    assert r.status == 200 and _xml_meta(r) == {"only": "1"}

    r = await put(demo, f"{base}/k2", data=f'<meta xmlns="{NS}" key="k2">v2</meta>', xml=True,
                  headers=XML_BODY)
    assert r.status == 200, r.raw
    assert etree.QName(r.xml) == etree.QName(NS, "meta")
    assert (r.xml.get("key"), r.xml.text) == ("k2", "v2")

    r = await demo.get(f"{base}/k2.xml")
    assert (r.xml.get("key"), r.xml.text) == ("k2", "v2")
    assert (await demo.delete(f"{base}/k2", xml=True)).status == 204
    r = await demo.get(f"{base}/k2", xml=True)
    assert r.status == 404 and etree.QName(r.xml).localname == "itemNotFound"

    r = await put(demo, base, data="<metadata/>", xml=True, headers=XML_BODY)
    assert r.status == 200 and _xml_meta(r) == {}


async def test_dotted_keys(server, demo):
    key = "com.hp__1__os_distro"
    base = f"/servers/{server}/metadata"
    r = await put(demo, f"{base}/{key}", json={"meta": {key: "com.ubuntu"}})
    assert r.status == 200, r.raw
    assert (await demo.get(f"{base}/{key}")).json == {"meta": {key: "com.ubuntu"}}
    assert (await demo.get(f"{base}/{key}.xml")).xml.get("key") == key


@pytest.mark.parametrize(("body", "message"), [
    ({"meta": {"other": "v"}}, "Request body and URI mismatch"),
    ({"meta": {"k": "v", "j": "w"}}, "Request body contains too many items"),
    ({"meta": {}}, "Request body and URI mismatch"),
    ({"meta": {"k": 5}}, "not a string"),
    ({"meta": "v"}, "Malformed request body"),
    ({"nothing": 1}, "Malformed request body"),
    ({"meta": {"k": "v" * 256}}, "255 bytes"),
])
async def test_bad_item_bodies_are_400(server, demo, body, message):
    r = await put(demo, f"/servers/{server}/metadata/k", json=body)
    assert r.status == 400 and fault_name(r) == "badRequest", r.raw
    assert message in r.json["badRequest"]["message"]
    assert (await demo.get(f"/servers/{server}/metadata")).json["metadata"] == {"a": "1"}


async def test_bad_item_body_xml_mismatch(server, demo):
    r = await put(demo, f"/servers/{server}/metadata/k", data='<meta key="j">v</meta>',
                  xml=True, headers=XML_BODY)
    assert r.status == 400 and etree.QName(r.xml).localname == "badRequest"
    assert "mismatch" in r.xml.findtext(f"{{{NS}}}message")


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize(("body", "status"), [
    ({"metadata": {"": "v"}}, 400),
    ({"metadata": {"k" * 256: "v"}}, 400),
    ({"metadata": {"k": "v" * 256}}, 400),
    ({"metadata": {"é" * 128: "v"}}, 400),  # 256 bytes
    ({"metadata": {"k": None}}, 400),
    ({"metadata": ["k"]}, 400),
    ({"metadata": None}, 400),
    ({"meta": {"k": "v"}}, 400),
    ({"metadata": {f"k{i}": "v" for i in range(51)}}, 413),
])
async def test_bad_metadata_bodies(server, demo, method, body, status):
    path = f"/servers/{server}/metadata"
    r = await (demo.post(path, json=body) if method == "post" else put(demo, path, json=body))
    assert r.status == status, r.raw
    assert fault_name(r) == {400: "badRequest", 413: "overLimit"}[status]
    assert (await demo.get(path)).json["metadata"] == {"a": "1"}


async def test_longest_keys_and_values_fit(server, demo):
    key, value = "k" * 255, "é" * 127 + "v"  # 255 bytes each
    r = await demo.post(f"/servers/{server}/metadata", json={"metadata": {key: value}})
    assert r.status == 200 and r.json["metadata"][key] == value


async def test_server_meta_limit_413(server, demo):
    base = f"/servers/{server}/metadata"
    fifty = {f"k{i}": "v" for i in range(50)}
    r = await put(demo, base, json={"metadata": fifty})
    assert r.status == 200 and len(r.json["metadata"]) == 50
    r = await demo.post(base, json={"metadata": {"one-more": "v"}})
    assert r.status == 413 and fault_name(r) == "overLimit"
    assert "50" in r.json["overLimit"]["message"]
    assert r.headers["Retry-After"] == "0"          # a quota: no wait frees it
    r = await put(demo, f"{base}/one-more", json={"meta": {"one-more": "v"}}, xml=True)
    assert r.status == 413 and etree.QName(r.xml).localname == "overLimit"
    assert r.headers["Retry-After"] == "0"
    # Overwriting an existing key does not add an item.
    r = await demo.post(base, json={"metadata": {"k0": "changed"}})
    assert r.status == 200 and r.json["metadata"]["k0"] == "changed"
    r = await put(demo, f"{base}/k1", json={"meta": {"k1": "changed"}})
    assert r.status == 200
    assert len((await demo.get(base)).json["metadata"]) == 50


async def test_concurrent_posts_lose_nothing(server, demo):
    base = f"/servers/{server}/metadata"
    results = await asyncio.gather(*[
        demo.post(base, json={"metadata": {f"c{i}": str(i)}}) for i in range(20)])
    assert [r.status for r in results] == [200] * 20
    got = (await demo.get(base)).json["metadata"]
    assert got == {"a": "1", **{f"c{i}": str(i) for i in range(20)}}


async def test_concurrent_item_puts_stop_at_the_limit(server, demo):
    base = f"/servers/{server}/metadata"
    results = await asyncio.gather(*[
        put(demo, f"{base}/p{i}", json={"meta": {f"p{i}": "v"}}) for i in range(60)])
    statuses = sorted(r.status for r in results)
    # "a" is there already: 49 more fit, the other 11 are over the limit.
    assert statuses == [200] * 49 + [413] * 11
    assert len((await demo.get(base)).json["metadata"]) == 50


async def test_server_metadata_of_missing_server_is_404(demo):
    for sid in (uuid.uuid4(), "not-a-uuid"):
        base = f"/servers/{sid}/metadata"
        for r in [await demo.get(base),
                  await demo.post(base, json={"metadata": {"k": "v"}}),
                  await put(demo, base, json={"metadata": {"k": "v"}}),
                  await demo.get(f"{base}/k"),
                  await put(demo, f"{base}/k", json={"meta": {"k": "v"}}),
                  await demo.delete(f"{base}/k")]:
            assert r.status == 404 and fault_name(r) == "itemNotFound", r.raw


async def test_other_project_cannot_touch_server_metadata(server, demo, alt):
    base = f"/servers/{server}/metadata"
    for r in [await alt.get(base),
              await alt.post(base, json={"metadata": {"k": "v"}}),
              await put(alt, base, json={"metadata": {"k": "v"}}),
              await alt.get(f"{base}/a"),
              await put(alt, f"{base}/a", json={"meta": {"a": "stolen"}}),
              await alt.delete(f"{base}/a"),
              await alt.get(f"{base}.xml")]:
        assert r.status == 404 and fault_name(r) == "itemNotFound", r.raw
    assert (await demo.get(base)).json["metadata"] == {"a": "1"}


async def test_metadata_of_deleted_or_deleting_server_is_404(demo, cloud):
    # A row in "deleting", written straight into the table for the moment of the test.
    sid = uuid.uuid4()
    conn = await cloud.db()
    try:
        await conn.execute(
            "INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,"
            " task_state, metadata, reservation_id) VALUES ($1, $2, 'fake', 'md-deleting', '100',"
            " '{}', 'active', 'deleting', '{\"a\": \"1\"}', 'r-fake')", sid, demo.project_id)
        base = f"/servers/{sid}/metadata"
        assert (await demo.get(base)).json == {"metadata": {"a": "1"}}  # still readable
        for r in [await demo.post(base, json={"metadata": {"k": "v"}}),
                  await put(demo, base, json={"metadata": {"k": "v"}}),
                  await put(demo, f"{base}/a", json={"meta": {"a": "2"}}),
                  await demo.delete(f"{base}/a")]:
            assert r.status == 404, r.raw
        await conn.execute("UPDATE servers SET vm_state = 'deleted', task_state = NULL,"
                           " deleted_at = now() WHERE id = $1", sid)
        assert (await demo.get(base)).status == 404
        assert (await demo.get(f"{base}/a")).status == 404
    finally:
        await conn.execute("DELETE FROM servers WHERE id = $1", sid)
        await conn.close()


async def test_metadata_change_shows_in_changes_since(server, demo, cloud):
    conn = await cloud.db()
    try:
        since = (await conn.fetchval("SELECT clock_timestamp()")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    finally:
        await conn.close()
    await demo.post(f"/servers/{server}/metadata", json={"metadata": {"poll": "me"}})
    r = await demo.get(f"/servers?changes-since={since}")
    assert server in [s["id"] for s in r.json["servers"]]


# ---- image metadata -------------------------------------------------------------------

@pytest.fixture
async def private_image(demo, cloud):
    """A snapshot of demo's, written into the table (no image upload exists)."""
    image_id = uuid.uuid4()
    conn = await cloud.db()
    try:
        await conn.execute(
            "INSERT INTO images (id, name, status, visibility, owner_project_id, metadata)"
            " VALUES ($1, $2, 'ACTIVE', 'private', $3, $4::jsonb)",
            image_id, f"snap-{image_id.hex[:8]}", demo.project_id, json.dumps({"a": "1"}))
        yield str(image_id)
    finally:
        await conn.execute("DELETE FROM images WHERE id = $1", image_id)
        await conn.close()


async def test_image_metadata_json(private_image, demo):
    base = f"/images/{private_image}/metadata"
    assert (await demo.get(base)).json == {"metadata": {"a": "1"}}
    r = await demo.post(base, json={"metadata": {"b": "2"}})
    assert r.status == 200 and r.json == {"metadata": {"a": "1", "b": "2"}}
    r = await put(demo, base, json={"metadata": {"c": "3"}})
    assert r.status == 200 and r.json == {"metadata": {"c": "3"}}
    r = await put(demo, f"{base}/d", json={"meta": {"d": "4"}})
    assert r.status == 200 and r.json == {"meta": {"d": "4"}}
    assert (await demo.get(f"{base}/d")).json == {"meta": {"d": "4"}}
    assert (await demo.delete(f"{base}/c")).status == 204
    assert (await demo.get(f"{base}/c")).status == 404
    assert (await demo.delete(f"{base}/c")).status == 404
    r = await demo.get(f"/images/{private_image}")
    assert r.json["image"]["metadata"] == {"d": "4"}


async def test_image_metadata_xml(private_image, demo):
    base = f"/images/{private_image}/metadata"
    assert _xml_meta(await demo.get(base, xml=True)) == {"a": "1"}
    r = await demo.post(base, data='<metadata><meta key="x">y</meta></metadata>', xml=True,
                        headers=XML_BODY)
    assert r.status == 200 and _xml_meta(r) == {"a": "1", "x": "y"}
    r = await put(demo, f"{base}/x", data='<meta key="x">z</meta>', xml=True, headers=XML_BODY)
    assert r.status == 200 and (r.xml.get("key"), r.xml.text) == ("x", "z")
    r = await put(demo, f"{base}/x", data='<meta key="y">z</meta>', xml=True, headers=XML_BODY)
    assert r.status == 400 and etree.QName(r.xml).localname == "badRequest"


async def test_image_meta_limit_413(private_image, demo):
    base = f"/images/{private_image}/metadata"
    r = await put(demo, base, json={"metadata": {f"k{i}": "v" for i in range(51)}})
    assert r.status == 413 and fault_name(r) == "overLimit"
    r = await put(demo, base, json={"metadata": {f"k{i}": "v" for i in range(50)}})
    assert r.status == 200
    r = await demo.post(base, json={"metadata": {"more": "v"}})
    assert r.status == 413
    r = await put(demo, f"{base}/more", json={"meta": {"more": "v"}})
    assert r.status == 413
    r = await demo.post(base, json={"metadata": {"k" * 256: "v"}})
    assert r.status == 400
    assert len((await demo.get(base)).json["metadata"]) == 50


async def test_public_image_metadata_is_read_only(demo, cloud):
    base = f"/images/{UBUNTU_IMAGE_ID}/metadata"
    before = (await demo.get(base)).json["metadata"]
    assert before["architecture"] == "x86_64"
    assert (await demo.get(f"{base}/architecture")).json == {"meta": {"architecture": "x86_64"}}
    admin = await cloud.login("admin", "admin", "admin")
    for api in (demo, admin):
        for r in [await api.post(base, json={"metadata": {"k": "v"}}),
                  await put(api, base, json={"metadata": {"k": "v"}}),
                  await put(api, f"{base}/architecture", json={"meta": {"architecture": "arm"}}),
                  await api.delete(f"{base}/architecture")]:
            assert r.status == 403 and fault_name(r) == "forbidden", r.raw
    r = await demo.delete(f"{base}/architecture", xml=True)
    assert r.status == 403 and etree.QName(r.xml).localname == "forbidden"
    assert (await demo.get(base)).json["metadata"] == before


async def test_other_project_cannot_touch_image_metadata(private_image, demo, alt):
    base = f"/images/{private_image}/metadata"
    for r in [await alt.get(base),
              await alt.post(base, json={"metadata": {"k": "v"}}),
              await put(alt, base, json={"metadata": {"k": "v"}}),
              await alt.get(f"{base}/a"),
              await put(alt, f"{base}/a", json={"meta": {"a": "stolen"}}),
              await alt.delete(f"{base}/a")]:
        assert r.status == 404 and fault_name(r) == "itemNotFound", r.raw
    assert (await demo.get(base)).json["metadata"] == {"a": "1"}


async def test_metadata_of_missing_or_deleted_image_is_404(private_image, demo):
    assert (await demo.delete(f"/images/{private_image}")).status == 204
    for image in (private_image, str(uuid.uuid4()), "nope"):
        base = f"/images/{image}/metadata"
        for r in [await demo.get(base),
                  await demo.post(base, json={"metadata": {"k": "v"}}),
                  await put(demo, f"{base}/a", json={"meta": {"a": "2"}}),
                  await demo.delete(f"{base}/a")]:
            assert r.status == 404, (image, r.raw)


async def test_concurrent_image_metadata_posts_lose_nothing(private_image, demo):
    base = f"/images/{private_image}/metadata"
    results = await asyncio.gather(*[
        demo.post(base, json={"metadata": {f"c{i}": str(i)}}) for i in range(15)])
    assert {r.status for r in results} == {200}
    assert len((await demo.get(base)).json["metadata"]) == 16
