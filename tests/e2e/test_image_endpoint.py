"""The image endpoint (port 9292, a Glance v2 subset) over the compute API's images,
through HTTP: version discovery, the list's filters and paging, show, delete and
PATCH agreeing with the compute API, the schema documents, another project's
isolation, createImage's Location polled to ``active``, a failed snapshot as
``error``; and openstacksdk's image proxy."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import openstack
import pytest

from services.api.catalog import CIRROS_IMAGE_ID, UBUNTU_IMAGE_ID
from tests.e2e.acting import delete_and_wait
from tests.e2e.client import Api, Cloud, Response, eventually
from tests.e2e.projects import new_project
from tests.schema_check import validate

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
PATCH_20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
NAMES = ("glance one", "glance two", "glance three")


async def glance(cloud: Cloud, api: Api, method: str, path: str, **kw) -> Response:
    return await cloud.request(method, path, token=api.token, base=cloud.image_url, **kw)


def fault(r: Response, status: int, words: str) -> None:
    """An image endpoint fault body: ``{"error": {"code": 404, "title", "message"}}``."""
    assert r.status == status, r.raw
    error = r.json["error"]
    assert error["code"] == status and error["title"], r.json
    assert words in error["message"], r.json


async def snapshot(api: Api, sid: str, name: str, **metadata: str) -> str:
    """createImage, its id from the Location header's last segment, once ACTIVE."""
    await api.wait_status(sid, lambda s: s["OS-EXT-STS:task_state"] is None)
    r = await api.post(f"/servers/{sid}/action",
                       json={"createImage": {"name": name, "metadata": metadata}})
    assert r.status == 202, r.raw
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    uuid.UUID(image_id)

    async def active():
        image = (await api.get(f"/images/{image_id}")).json["image"]
        return image if image["status"] == "ACTIVE" else None
    await eventually(active)
    return image_id


@dataclass
class World:
    own: Api
    server_id: str
    snaps: dict[str, str]  # name -> id
    other: Api
    other_snap: str
    public: dict[str, str]  # id -> name, as the compute API lists them


@pytest.fixture(scope="module")
async def world(cloud) -> World:
    """Two projects of the module's own, each with snapshots. The tests below run
    in file order: the ones that delete (last) come after the ones that count."""
    own, _ = await new_project(cloud)
    other, _ = await new_project(cloud)
    r = await own.boot(name="glance-src")
    sid = r.json["server"]["id"]
    r2 = await other.boot(name="glance-other")
    osid = r2.json["server"]["id"]
    for api, s in ((own, sid), (other, osid)):
        await api.wait_status(s, lambda x: x is not None and x["status"] == "ACTIVE")
    snaps = {}
    for name in NAMES:
        snaps[name] = await snapshot(own, sid, name, purpose="e2e")
    other_snap = await snapshot(other, osid, "glance other")
    listed = (await own.get("/images/detail")).json["images"]
    public = {i["id"]: i["name"] for i in listed if "server" not in i}
    await delete_and_wait(other, osid)
    return World(own, sid, snaps, other, other_snap, public)


async def test_version_discovery_without_a_token(cloud):
    r = await cloud.request("GET", "/", base=cloud.image_url)
    assert r.status == 300
    versions = r.json["versions"]
    assert [v["id"] for v in versions] == [f"v2.{n}" for n in range(9, -1, -1)]
    assert versions[0]["status"] == "CURRENT" and versions[-1]["status"] == "SUPPORTED"
    assert versions[0]["links"] == [{"rel": "self", "href": f"{cloud.image_url}/v2/"}]
    for path in ("/versions", "/v2/", "/v2"):
        r = await cloud.request("GET", path, base=cloud.image_url)
        assert r.status == 200 and r.json["versions"] == versions, path
    r = await cloud.request("GET", "/v2/images", base=cloud.image_url)
    fault(r, 401, "token")


async def test_list_is_what_the_compute_api_shows_the_project(cloud, world):
    r = await glance(cloud, world.own, "GET", "/v2/images")
    assert r.status == 200, r.raw
    images = {i["id"]: i for i in r.json["images"]}
    assert set(images) == set(world.public) | set(world.snaps.values())
    assert world.other_snap not in images
    assert r.json["first"] == "/v2/images" and r.json["schema"] == "/v2/schemas/images"
    assert "next" not in r.json
    # Newest first: the snapshots (made last, the newest last) lead.
    assert [i["name"] for i in r.json["images"][:3]] == list(reversed(NAMES))
    one = images[world.snaps["glance one"]]
    compute = (await world.own.get(f"/images/{one['id']}")).json["image"]
    assert one["name"] == "glance one" and one["status"] == "active"
    assert one["visibility"] == "private" and one["owner"] == world.own.project_id
    assert one["size"] == compute["OS-EXT-IMG-SIZE:size"] > 0
    assert one["min_disk"] == compute["minDisk"] and one["min_ram"] == compute["minRam"]
    assert one["image_type"] == "snapshot" and one["instance_uuid"] == world.server_id
    assert one["purpose"] == "e2e" and one["base_image_ref"] == str(CIRROS_IMAGE_ID)
    assert one["container_format"] == "bare" and one["disk_format"] == "raw"
    assert one["tags"] == [] and one["os_hidden"] is False and one["protected"] is False
    cirros = images[str(CIRROS_IMAGE_ID)]
    assert cirros["visibility"] == "public" and cirros["name"] == world.public[cirros["id"]]
    assert cirros["os_distro"] == "cirros"


@pytest.mark.parametrize(("query", "want"), [
    ("name=glance%20two", ["glance two"]),
    ('name=in:"glance one",glance%20three', ["glance one", "glance three"]),
    ("visibility=private", list(NAMES)),
    ("visibility=all&member_status=all", None),  # everything
    ("image_type=snapshot&purpose=e2e", list(NAMES)),
    ("status=active&visibility=private", list(NAMES)),
    ("status=saving", []), ("status=killed", []), ("tag=web", []),
    ("visibility=shared", []), ("visibility=community", []), ("os_hidden=true", []),
    ("container_format=bare&disk_format=raw&visibility=private", list(NAMES)),
    ("container_format=ovf", []), ("size_min=1&visibility=private", list(NAMES)),
])
async def test_list_filters(cloud, world, query, want):
    r = await glance(cloud, world.own, "GET", f"/v2/images?{query}")
    assert r.status == 200, r.raw
    names = sorted(i["name"] for i in r.json["images"])
    if want is None:
        assert len(names) == len(world.public) + len(NAMES)
    else:
        assert names == sorted(want)


async def test_id_in_owner_and_visibility_public(cloud, world):
    ids = [world.snaps["glance one"], str(CIRROS_IMAGE_ID), world.other_snap, "not-a-uuid"]
    r = await glance(cloud, world.own, "GET", f"/v2/images?id=in:{','.join(ids)}")
    assert sorted(i["id"] for i in r.json["images"]) == sorted(ids[:2])
    r = await glance(cloud, world.own, "GET", f"/v2/images?id={world.snaps['glance two']}")
    assert [i["name"] for i in r.json["images"]] == ["glance two"]
    r = await glance(cloud, world.own, "GET", f"/v2/images?owner={world.own.project_id}")
    assert sorted(i["name"] for i in r.json["images"]) == sorted(NAMES)
    r = await glance(cloud, world.own, "GET", f"/v2/images?owner={world.other.project_id}")
    assert r.json["images"] == []
    r = await glance(cloud, world.own, "GET", "/v2/images?visibility=public")
    assert {i["id"] for i in r.json["images"]} == set(world.public)


@pytest.mark.parametrize(("query", "words"), [
    ("visibility=friends", "Invalid visibility value: friends"),
    ("member_status=maybe", "Invalid status: maybe"),
    ("sort_key=owner", "Invalid sort key: owner"),
    ("sort_dir=sideways", "Invalid sort direction: sideways"),
    ("limit=abc", "limit param must be an integer"),
    ("limit=-3", "limit param must be positive"),
    (f"marker={uuid.uuid4()}", "No image found with ID"),
    ("marker=junk", "No image found with ID junk"),
    ("changes-since=2020-01-01T00:00:00Z", "no longer available on v2"),
])
async def test_bad_list_queries_are_400(cloud, world, query, words):
    fault(await glance(cloud, world.own, "GET", f"/v2/images?{query}"), 400, words)


async def test_another_projects_image_is_no_marker(cloud, world):
    r = await glance(cloud, world.own, "GET", f"/v2/images?marker={world.other_snap}")
    fault(r, 400, world.other_snap)


async def test_pages_follow_next_links_in_the_asked_order(cloud, world):
    for query, key, reverse in (("sort=name:asc", "name", False),
                                ("sort_key=name&sort_dir=desc", "name", True),
                                ("sort=size:asc,name:desc", None, None)):
        seen: list[dict] = []
        path = f"/v2/images?{query}&limit=2"
        pages = 0
        while path:
            r = await glance(cloud, world.own, "GET", path)
            assert r.status == 200, r.raw
            assert len(r.json["images"]) <= 2
            seen += r.json["images"]
            path = r.json.get("next")
            pages += 1
            if path:
                assert "limit=2" in path and f"marker={seen[-1]['id']}" in path
        assert len(seen) == len({i["id"] for i in seen}) == len(world.public) + len(NAMES)
        total = len(seen)
        assert pages == total // 2 + 1  # a full last page still links to an empty one
        if key:
            assert [i[key] for i in seen] == sorted((i[key] for i in seen), reverse=reverse)
        else:
            assert [(i["size"], i["name"]) for i in seen] == sorted(
                ((i["size"], i["name"]) for i in seen), key=lambda t: (t[0], _desc(t[1])))


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text) + (1,)


async def test_show_and_the_404s_clients_rely_on(cloud, world):
    image_id = world.snaps["glance two"]
    r = await glance(cloud, world.own, "GET", f"/v2/images/{image_id}")
    assert r.status == 200 and r.json["id"] == image_id and r.json["name"] == "glance two"
    assert r.json["self"] == f"/v2/images/{image_id}"
    assert r.json["file"] == f"/v2/images/{image_id}/file"
    assert r.json["schema"] == "/v2/schemas/image"
    assert r.json["created_at"].endswith("Z") and r.json["updated_at"].endswith("Z")
    unknown = str(uuid.uuid4())
    fault(await glance(cloud, world.own, "GET", f"/v2/images/{unknown}"), 404, unknown)
    # Another project's private image does not exist for this one.
    r = await glance(cloud, world.own, "GET", f"/v2/images/{world.other_snap}")
    fault(r, 404, world.other_snap)
    # A name where an id goes is 404, then ?name= finds it: openstack server create
    # --image NAME and nova boot --image NAME look an image up so.
    name = "CirrOS 0.3.1 (x86_64)"
    r = await glance(cloud, world.own, "GET", f"/v2/images/{quote(name)}")
    fault(r, 404, name)
    r = await glance(cloud, world.own, "GET", f"/v2/images?name={quote(name)}")
    assert [i["id"] for i in r.json["images"]] == [str(CIRROS_IMAGE_ID)]


async def test_every_image_validates_against_the_schemas(cloud, world):
    image_schema = await glance(cloud, world.own, "GET", "/v2/schemas/image")
    images_schema = await glance(cloud, world.own, "GET", "/v2/schemas/images")
    assert image_schema.status == images_schema.status == 200
    assert image_schema.json["name"] == "image"
    assert image_schema.json["additionalProperties"] == {"type": "string"}
    assert "error" in image_schema.json["properties"]["status"]["enum"]
    listed = await glance(cloud, world.own, "GET", "/v2/images")
    validate(listed.json, images_schema.json)
    for image in listed.json["images"]:
        validate(image, image_schema.json)
        shown = await glance(cloud, world.own, "GET", f"/v2/images/{image['id']}")
        assert shown.json == image
    with pytest.raises(AssertionError):  # the check does check
        validate({**listed.json["images"][0], "size": "big"}, image_schema.json)


async def test_patch_name_and_properties_is_the_compute_apis_metadata(cloud, world):
    image_id = world.snaps["glance three"]
    r = await glance(cloud, world.own, "PATCH", f"/v2/images/{image_id}", headers=PATCH, json=[
        {"op": "replace", "path": "/name", "value": "glance three renamed"},
        {"op": "add", "path": "/color", "value": "blue"},
        {"op": "replace", "path": "/purpose", "value": "patched"},
        {"op": "remove", "path": "/image_state"}])
    assert r.status == 200, r.raw
    assert r.json["name"] == "glance three renamed" and r.json["color"] == "blue"
    assert r.json["purpose"] == "patched" and "image_state" not in r.json
    compute = (await world.own.get(f"/images/{image_id}")).json["image"]
    assert compute["name"] == "glance three renamed"
    assert compute["metadata"]["color"] == "blue" and compute["metadata"]["purpose"] == "patched"
    assert "image_state" not in compute["metadata"]
    # The v2.0 dialect; adding what is there is a conflict in it.
    r = await glance(cloud, world.own, "PATCH", f"/v2/images/{image_id}", headers=PATCH_20,
                     json=[{"replace": "/name", "value": "glance three"}])
    assert r.status == 200 and r.json["name"] == "glance three", r.raw
    r = await glance(cloud, world.own, "PATCH", f"/v2/images/{image_id}", headers=PATCH_20,
                     json=[{"add": "/color", "value": "red"}])
    fault(r, 409, "color already present")
    assert (await world.own.get(f"/images/{image_id}/metadata/color")).json["meta"] == {
        "color": "blue"}


async def test_patch_refusals_change_nothing(cloud, world):
    image_id = world.snaps["glance one"]
    before = (await world.own.get(f"/images/{image_id}")).json["image"]
    path = f"/v2/images/{image_id}"
    ok_op = {"op": "add", "path": "/touched", "value": "yes"}
    cases = [
        (PATCH, [ok_op, {"op": "replace", "path": "/status", "value": "active"}], 403,
         "Attribute 'status' is read-only."),
        (PATCH, [ok_op, {"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403,
         "read-only"),
        (PATCH, [ok_op, {"op": "replace", "path": "/owner", "value": "me"}], 403,
         "cannot be changed"),
        (PATCH, [ok_op, {"op": "replace", "path": "/nope", "value": "x"}], 409,
         "nope does not exist"),
        (PATCH, [ok_op, {"op": "remove", "path": "/nope"}], 409, "nope does not exist"),
        (PATCH, [ok_op, {"op": "add", "path": "/n", "value": 5}], 400, "not a string"),
        (PATCH, [ok_op, {"op": "replace", "path": "/name", "value": " "}], 400, "blank"),
        (PATCH, {"op": "add"}, 400, "JSON array"),
        (PATCH, [ok_op] + [{"op": "add", "path": f"/k{i}", "value": "v"} for i in range(50)],
         413, "Maximum number of metadata items exceeds 50"),
        ({"Content-Type": "application/json"}, [ok_op], 415, "Image PATCH expects"),
    ]
    for headers, body, status, words in cases:
        r = await glance(cloud, world.own, "PATCH", path, headers=headers, json=body)
        fault(r, status, words)
        if status == 415:
            assert "application/openstack-images-v2.1-json-patch" in r.headers["Accept-Patch"]
    r = await glance(cloud, world.own, "PATCH", path, headers=PATCH, data=b"[{")
    fault(r, 400, "Malformed JSON")
    after = (await world.own.get(f"/images/{image_id}")).json["image"]
    assert after == before
    # A public image is the provider's (403); another project's does not exist (404).
    r = await glance(cloud, world.own, "PATCH", f"/v2/images/{CIRROS_IMAGE_ID}",
                     headers=PATCH, json=[ok_op])
    fault(r, 403, "not yours")
    r = await glance(cloud, world.own, "PATCH", f"/v2/images/{world.other_snap}",
                     headers=PATCH, json=[ok_op])
    fault(r, 404, world.other_snap)
    assert "touched" not in (await glance(cloud, world.own, "GET",
                                          f"/v2/images/{CIRROS_IMAGE_ID}")).json


async def test_delete_follows_the_compute_apis_rules(cloud, world):
    fault(await glance(cloud, world.own, "DELETE", f"/v2/images/{CIRROS_IMAGE_ID}"), 403,
          "not yours")
    fault(await glance(cloud, world.own, "DELETE", f"/v2/images/{world.other_snap}"), 404,
          world.other_snap)
    fault(await glance(cloud, world.own, "DELETE", "/v2/images/not-an-id"), 404, "not-an-id")
    assert (await world.own.get(f"/images/{CIRROS_IMAGE_ID}")).status == 200
    assert (await world.other.get(f"/images/{world.other_snap}")).status == 200

    image_id = world.snaps["glance one"]
    r = await glance(cloud, world.own, "DELETE", f"/v2/images/{image_id}")
    assert r.status == 204 and r.raw == b"", r.raw
    assert (await world.own.get(f"/images/{image_id}")).status == 404
    fault(await glance(cloud, world.own, "GET", f"/v2/images/{image_id}"), 404, image_id)
    listed = await glance(cloud, world.own, "GET", "/v2/images?visibility=private")
    assert sorted(i["name"] for i in listed.json["images"]) == ["glance three", "glance two"]
    fault(await glance(cloud, world.own, "DELETE", f"/v2/images/{image_id}"), 404, image_id)
    # And the other way round: what the compute API deletes is gone here.
    two = world.snaps["glance two"]
    assert (await world.own.delete(f"/images/{two}")).status == 204
    fault(await glance(cloud, world.own, "GET", f"/v2/images/{two}"), 404, two)


async def test_create_image_location_is_polled_to_active(cloud, demo):
    r = await demo.boot(name="glance-poll")
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, lambda s: s["status"] == "ACTIVE")
    r = await demo.post(f"/servers/{sid}/action", json={"createImage": {"name": "polled"}})
    assert r.status == 202, r.raw
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    seen: list[str] = []

    async def settled():
        r = await glance(cloud, demo, "GET", f"/v2/images/{image_id}")
        assert r.status == 200, r.raw
        if not seen or seen[-1] != r.json["status"]:
            seen.append(r.json["status"])
        return r.json if r.json["status"] != "saving" else None
    image = await eventually(settled, interval=0.05)
    assert seen in (["saving", "active"], ["active"]) and image["status"] == "active"
    assert image["name"] == "polled" and image["instance_uuid"] == sid
    assert image["size"] > 0
    await delete_and_wait(demo, sid)
    assert (await glance(cloud, demo, "DELETE", f"/v2/images/{image_id}")).status == 204


async def test_a_failed_snapshot_shows_as_error(cloud, demo):
    """A snapshot cut short by its server's delete fails (ERROR, and gone from the
    compute API); the image endpoint shows it by id as ``error``, which stops
    the waiters of openstack ``server image create --wait`` and openstacksdk."""
    r = await demo.boot(name="glance-fail")
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, lambda s: s["status"] == "ACTIVE")
    r = await demo.post(f"/servers/{sid}/action", json={"createImage": {"name": "doomed"}})
    assert r.status == 202, r.raw
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    assert (await demo.delete(f"/servers/{sid}")).status == 204

    async def failed():
        r = await glance(cloud, demo, "GET", f"/v2/images/{image_id}")
        assert r.status == 200 and r.json["status"] in ("saving", "error"), r.raw
        return r.json if r.json["status"] == "error" else None
    image = await eventually(failed)
    assert image["name"] == "doomed" and image["id"] == image_id
    assert (await demo.get(f"/images/{image_id}")).status == 404
    listed = await glance(cloud, demo, "GET", "/v2/images")
    assert image_id not in {i["id"] for i in listed.json["images"]}
    r = await glance(cloud, demo, "GET", f"/v2/images?id={image_id}")
    assert r.json["images"] == []
    # Deleting it makes it gone here too.
    assert (await glance(cloud, demo, "DELETE", f"/v2/images/{image_id}")).status == 204
    fault(await glance(cloud, demo, "GET", f"/v2/images/{image_id}"), 404, image_id)
    await demo.wait_status(sid, lambda s: s is None)


def _sdk(identity_url: str) -> dict:
    conn = openstack.connect(
        auth_url=f"{identity_url}/v3", username="demo", password="demo", project_name="demo",
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")
    out: dict = {"names": [i.name for i in conn.image.images()]}
    out["paged"] = [i.id for i in conn.image.images(limit=1, sort="name:asc")]
    found = conn.image.find_image("CirrOS 0.3.1 (x86_64)", ignore_missing=False)
    shown = conn.image.get_image(found.id)
    out["found"] = (found.id, shown.name, shown.status, shown.min_ram, shown.disk_format,
                    shown.os_distro)
    ubuntu = conn.image.get_image(str(UBUNTU_IMAGE_ID))
    out["custom"] = ubuntu.properties.get("com.hp__1__image_type")
    out["cloud_get"] = conn.get_image("CirrOS 0.3.1 (x86_64)").id
    out["missing"] = conn.image.find_image("no such image")
    # The snapshot path of openstacksdk: createImage's Location, then the image
    # endpoint polled until active.
    server = conn.compute.create_server(name="sdk-snap", image_id=str(CIRROS_IMAGE_ID),
                                        flavor_id="100")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    started = time.monotonic()
    image = conn.compute.create_server_image(server, "sdk snapshot", wait=True, timeout=60)
    out["snap"] = (image.name, image.status, image.instance_uuid, image.properties["image_type"],
                   time.monotonic() - started < 60)
    conn.image.delete_image(image.id)
    out["snap_after"] = conn.image.find_image(image.id)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=0.5)
    out["server_id"] = server.id
    return out


async def test_openstacksdk_image_proxy(cloud):
    out = await asyncio.to_thread(_sdk, cloud.identity_url)
    assert "CirrOS 0.3.1 (x86_64)" in out["names"]
    assert len(out["paged"]) == len(set(out["paged"])) == len(out["names"])
    assert out["found"] == (str(CIRROS_IMAGE_ID), "CirrOS 0.3.1 (x86_64)", "active", 64, "raw",
                            "cirros")
    assert out["custom"] == "disk"  # a custom property, at the top level in Glance's shape
    assert out["cloud_get"] == str(CIRROS_IMAGE_ID)
    assert out["missing"] is None
    assert out["snap"] == ("sdk snapshot", "active", out["server_id"], "snapshot", True)
    assert out["snap_after"] is None
