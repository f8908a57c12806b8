"""The block-storage endpoint (a Cinder v3 subset on port 8776) end to end: version
discovery and microversion headers; volumes and snapshots created, listed,
filtered, sorted, paged, updated and deleted through it are the compute API's
(os-volumes and os-snapshots show the same rows, and the other way round);
attachments made through the compute API show in Cinder's volume body; bad
input is a Cinder fault that changes nothing; another project's volume is 404;
quotas, limits, types and zones are the compute API's."""

from __future__ import annotations

from typing import Any

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.acting import active_server
from tests.e2e.client import Api, Cloud, Response, eventually
from tests.e2e.projects import manage, new_project
from tests.e2e.volumes import attach, detach, rows

VOLUME_KEYS = {
    "id", "name", "description", "status", "size", "availability_zone", "bootable",
    "encrypted", "multiattach", "volume_type", "snapshot_id", "source_volid", "metadata",
    "attachments", "created_at", "updated_at", "user_id", "os-vol-tenant-attr:tenant_id",
    "replication_status", "consistencygroup_id", "links"}


async def cinder(api: Api, method: str, rest: str, **kw: Any) -> Response:
    return await api.cloud.request(method, f"/v3/{api.project_id}{rest}", token=api.token,
                                   base=api.cloud.block_storage_url, **kw)


def fault(r: Response, name: str, code: int) -> str:
    assert r.status == code, (r.status, r.raw)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert list(r.json) == [name], r.json
    assert r.json[name]["code"] == code
    return r.json[name]["message"]


async def wait_volume(api: Api, vid: str, status: str = "available") -> dict:
    async def reached() -> dict | None:
        r = await cinder(api, "GET", f"/volumes/{vid}")
        assert r.status == 200, r.raw
        assert r.json["volume"]["status"] != "error", r.json
        return r.json["volume"] if r.json["volume"]["status"] == status else None
    return await eventually(reached, timeout=60)


async def wait_gone(api: Api, path: str) -> None:
    async def gone() -> bool:
        return (await cinder(api, "GET", path)).status == 404
    await eventually(gone, timeout=60)


async def new_volume(api: Api, **fields: Any) -> dict:
    r = await cinder(api, "POST", "/volumes", json={"volume": {"size": 1, **fields}})
    assert r.status == 202, r.raw
    return await wait_volume(api, r.json["volume"]["id"])


async def new_snapshot(api: Api, vid: str, **fields: Any) -> dict:
    r = await cinder(api, "POST", "/snapshots", json={"snapshot": {"volume_id": vid, **fields}})
    assert r.status == 202, r.raw
    sid = r.json["snapshot"]["id"]

    async def ready() -> dict | None:
        snap = (await cinder(api, "GET", f"/snapshots/{sid}")).json["snapshot"]
        assert snap["status"] != "error", snap
        return snap if snap["status"] == "available" else None
    return await eventually(ready, timeout=60)


async def test_discovery_and_microversions(cloud: Cloud, demo: Api) -> None:
    root = await cloud.request("GET", "/", base=cloud.block_storage_url)
    assert root.status == 300
    [version] = root.json["versions"]
    assert (version["id"], version["version"], version["min_version"]) == ("v3.0", "3.0", "3.0")
    assert {"rel": "self", "href": f"{cloud.block_storage_url}/v3/"} in version["links"]
    v3 = await cloud.request("GET", "/v3/", base=cloud.block_storage_url)
    assert v3.status == 200 and v3.json["versions"][0]["id"] == "v3.0"

    plain = await cinder(demo, "GET", "/volumes")
    assert plain.headers["OpenStack-API-Version"] == "volume 3.0"
    assert "OpenStack-API-Version" in plain.headers["Vary"]
    for asked in ("volume 3.0", "volume latest", "compute 2.1, volume 3.0"):
        r = await cinder(demo, "GET", "/volumes", headers={"OpenStack-API-Version": asked})
        assert (r.status, r.headers["OpenStack-API-Version"]) == (200, "volume 3.0"), asked
    legacy = await cinder(demo, "GET", "/volumes",
                          headers={"OpenStack-Volume-microversion": "3.0"})
    assert legacy.headers["OpenStack-API-Version"] == "volume 3.0"
    too_new = await cinder(demo, "GET", "/volumes",
                           headers={"OpenStack-API-Version": "volume 3.5"})
    assert "Minimum is 3.0 and maximum is 3.0" in fault(too_new, "computeFault", 406)
    bad = await cinder(demo, "GET", "/volumes", headers={"OpenStack-API-Version": "volume 3.x"})
    assert "invalid format" in fault(bad, "badRequest", 400)
    assert (await cloud.request("GET", f"/v3/{demo.project_id}/volumes",
                                base=cloud.block_storage_url)).status == 401


async def test_volumes_are_the_compute_apis(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    # What cinderclient sends: every field, unused ones null.
    body = {"size": 1, "name": "v1", "description": "first", "metadata": {"tier": "gold"},
            "imageRef": None, "source_volid": None, "snapshot_id": None, "volume_type": None,
            "availability_zone": None, "consistencygroup_id": None, "multiattach": False}
    r = await cinder(api, "POST", "/volumes", json={"volume": body})
    assert r.status == 202, r.raw
    created = r.json["volume"]
    assert VOLUME_KEYS <= set(created)
    assert (created["name"], created["description"], created["size"], created["status"],
            created["metadata"], created["bootable"], created["attachments"],
            created["os-vol-tenant-attr:tenant_id"]) == (
        "v1", "first", 1, "creating", {"tier": "gold"}, "false", [], api.project_id)
    assert "os-vol-host-attr:host" not in created   # admins only
    vid = created["id"]
    assert {"rel": "self", "href": f"{cloud.block_storage_url}/v3/{api.project_id}/volumes/{vid}"
            } in created["links"]
    shown = await wait_volume(api, vid)
    compute = (await api.get(f"/os-volumes/{vid}")).json["volume"]
    assert (compute["displayName"], compute["displayDescription"], compute["size"],
            compute["status"], compute["metadata"], compute["availabilityZone"]) == (
        "v1", "first", 1, "available", {"tier": "gold"}, shown["availability_zone"])

    # A volume made through the compute API shows here too.
    r = await api.post("/os-volumes", json={"volume": {"size": 2, "display_name": "v2"}})
    other = await wait_volume(api, r.json["volume"]["id"])
    assert (other["name"], other["size"], other["volume_type"]) == ("v2", 2, None)
    third = await new_volume(api, name="v3", metadata={"tier": "gold"})

    summary = (await cinder(api, "GET", "/volumes")).json["volumes"]
    assert [set(v) for v in summary] == [{"id", "name", "links"}] * 3
    assert [v["name"] for v in summary] == ["v3", "v2", "v1"]   # newest first
    detail = (await cinder(api, "GET", "/volumes/detail")).json["volumes"]
    assert {v["id"]: v["status"] for v in detail} == {
        vid: "available", other["id"]: "available", third["id"]: "available"}

    async def names(query: str) -> list[str]:
        r = await cinder(api, "GET", f"/volumes/detail?{query}")
        assert r.status == 200, r.raw
        return [v["name"] for v in r.json["volumes"]]
    assert await names("name=v1") == ["v1"]
    assert await names("name=v1&all_tenants=1") == ["v1"]   # ignored for a member
    assert await names("status=available&sort=name:asc") == ["v1", "v2", "v3"]
    assert await names('metadata={"tier":"gold"}&sort_key=name&sort_dir=asc') == ["v1", "v3"]
    assert await names("metadata={'tier': 'gold'}&sort=size:desc,name:desc") == ["v3", "v1"]
    assert await names("status=error") == []

    first = await cinder(api, "GET", "/volumes?sort=name:asc&limit=2")
    assert [v["name"] for v in first.json["volumes"]] == ["v1", "v2"]
    [link] = first.json["volumes_links"]
    assert link["rel"] == "next" and f"marker={other['id']}" in link["href"]
    rest = await cinder(api, "GET", f"/volumes?sort=name:asc&limit=2&marker={other['id']}")
    assert [v["name"] for v in rest.json["volumes"]] == ["v3"]
    assert "volumes_links" not in rest.json

    # A name is not an id: 404 (clients then list ?name=).
    assert "v1" in fault(await cinder(api, "GET", "/volumes/v1"), "itemNotFound", 404)

    r = await cinder(api, "PUT", f"/volumes/{vid}",
                     json={"volume": {"name": "renamed", "metadata": {"k": "v"}}})
    assert r.status == 200, r.raw
    assert (r.json["volume"]["name"], r.json["volume"]["description"],
            r.json["volume"]["metadata"]) == ("renamed", "first", {"k": "v"})
    compute = (await api.get(f"/os-volumes/{vid}")).json["volume"]
    assert (compute["displayName"], compute["metadata"]) == ("renamed", {"k": "v"})

    for v in (vid, other["id"], third["id"]):
        assert (await cinder(api, "DELETE", f"/volumes/{v}")).status == 202
    for v in (vid, other["id"], third["id"]):
        await wait_gone(api, f"/volumes/{v}")
        assert (await api.get(f"/os-volumes/{v}")).status == 404
    assert (await cinder(api, "GET", "/volumes")).json == {"volumes": []}


async def test_snapshots(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    vol = await new_volume(api, name="src")
    # cinderclient always sends metadata, empty when none.
    snap = await new_snapshot(api, vol["id"], name="s1", description="d", force=False,
                              metadata={})
    assert (snap["name"], snap["description"], snap["volume_id"], snap["size"],
            snap["metadata"], snap["os-extended-snapshot-attributes:progress"],
            snap["os-extended-snapshot-attributes:project_id"]) == (
        "s1", "d", vol["id"], 1, {}, "100%", api.project_id)
    compute = (await api.get(f"/os-snapshots/{snap['id']}")).json["snapshot"]
    assert (compute["display_name"], compute["volume_id"], compute["status"]) == (
        "s1", vol["id"], "available")
    listed = (await cinder(api, "GET", "/snapshots")).json["snapshots"]
    assert [s["id"] for s in listed] == [snap["id"]]
    by_volume = await cinder(api, "GET", f"/snapshots/detail?volume_id={vol['id']}")
    assert [s["name"] for s in by_volume.json["snapshots"]] == ["s1"]
    assert (await cinder(api, "GET", "/snapshots?name=nope")).json["snapshots"] == []

    r = await cinder(api, "PUT", f"/snapshots/{snap['id']}", json={"snapshot": {"name": "s2"}})
    assert (r.status, r.json["snapshot"]["name"], r.json["snapshot"]["description"]) == (
        200, "s2", "d")
    before = await rows(cloud, api.project_id)
    refused = await cinder(api, "DELETE", f"/volumes/{vol['id']}")
    assert "1 dependent snapshots" in fault(refused, "badRequest", 400)
    meta = await cinder(api, "POST", "/snapshots", json={"snapshot": {
        "volume_id": vol["id"], "metadata": {"a": "b"}}})
    assert "metadata" in fault(meta, "badRequest", 400)
    assert await rows(cloud, api.project_id) == before

    assert (await cinder(api, "DELETE", f"/snapshots/{snap['id']}")).status == 202
    await wait_gone(api, f"/snapshots/{snap['id']}")
    assert (await api.get(f"/os-snapshots/{snap['id']}")).status == 404
    assert (await cinder(api, "DELETE", f"/volumes/{vol['id']}")).status == 202
    await wait_gone(api, f"/volumes/{vol['id']}")


async def test_bad_input_and_other_projects_change_nothing(cloud: Cloud, alt: Api) -> None:
    api, _ = await new_project(cloud)
    vol = await new_volume(api, name="mine")
    before = await rows(cloud, api.project_id)
    bad_creates = [
        ({"volume": {"size": 0}}, "size"),
        ({"volume": {"size": "big"}}, "size"),
        ({"volume": {"size": 1, "source_volid": vol["id"]}}, "source_volid"),
        ({"volume": {"size": 1, "multiattach": True}}, "Multiattach"),
        ({"volume": {"size": 1, "backup_id": vol["id"]}}, "backups"),
        ({"volume": {"size": 1, "metadata": ["x"]}}, "metadata"),
        ({"volume": {"size": 1, "name": "x" * 256}}, "display_name"),
        ({"volume": {"size": 1, "availability_zone": "nowhere"}}, "nowhere"),
        ({"volume": {"size": 1, "imageRef": "not-an-image"}}, "imageRef"),
        ({"volume": "one"}, "'volume' object"),
        ({}, "'volume' object"),
    ]
    for body, words in bad_creates:
        r = await cinder(api, "POST", "/volumes", json=body)
        assert words in fault(r, "badRequest", 400), body
    r = await cinder(api, "POST", "/volumes", data=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert "not JSON" in fault(r, "badRequest", 400)
    r = await cinder(api, "POST", "/volumes", json={"volume": {"size": 1, "volume_type": "gold"}})
    assert "gold" in fault(r, "itemNotFound", 404)
    for update in ({"volume": {"size": 5}}, {"volume": {}}, {"volume": {"metadata": "x"}}):
        fault(await cinder(api, "PUT", f"/volumes/{vol['id']}", json=update), "badRequest", 400)
    for query in ("sort=colour:asc", "sort=name:up", "limit=-1", "metadata=[1]"):
        fault(await cinder(api, "GET", f"/volumes?{query}"), "badRequest", 400)
    marker = await cinder(api, "GET", f"/volumes?marker={alt.project_id}")
    assert "could not be found" in fault(marker, "itemNotFound", 404)
    action = await cinder(api, "POST", f"/volumes/{vol['id']}/action",
                          json={"os-extend": {"new_size": 2}})
    assert "os-extend" in fault(action, "badRequest", 400)

    # Another project sees no such volume, by any path of either API.
    for method, path, body in (("GET", f"/volumes/{vol['id']}", None),
                               ("PUT", f"/volumes/{vol['id']}", {"volume": {"name": "x"}}),
                               ("DELETE", f"/volumes/{vol['id']}", None),
                               ("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})):
        fault(await cinder(alt, method, path, json=body), "itemNotFound", 404)
    assert vol["id"] not in [v["id"] for v in
                             (await cinder(alt, "GET", "/volumes?all_tenants=1")).json["volumes"]]
    other_path = await cloud.request("GET", f"/v3/{api.project_id}/volumes", token=alt.token,
                                     base=cloud.block_storage_url)
    assert other_path.status == 401
    assert await rows(cloud, api.project_id) == before
    shown = (await cinder(api, "GET", f"/volumes/{vol['id']}")).json["volume"]
    assert (shown["name"], shown["size"], shown["status"]) == ("mine", 1, "available")

    admin = await cloud.login("admin", "admin", "admin")
    everyone = await cinder(admin, "GET", "/volumes/detail?all_tenants=True")
    mine = [v for v in everyone.json["volumes"] if v["id"] == vol["id"]]
    assert [v["os-vol-tenant-attr:tenant_id"] for v in mine] == [api.project_id]
    assert mine[0]["os-vol-host-attr:host"]
    one = await cinder(admin, "GET", f"/volumes?all_tenants=1&project_id={api.project_id}")
    assert [v["id"] for v in one.json["volumes"]] == [vol["id"]]
    own = await cinder(admin, "GET", "/volumes/detail")
    assert vol["id"] not in [v["id"] for v in own.json["volumes"]]


async def test_quotas_limits_types_and_zones(cloud: Cloud, demo: Api) -> None:
    api, name = await new_project(cloud, maxTotalVolumes=2, maxTotalVolumeGigabytes=3)
    await new_volume(api, size=2)
    absolute = (await cinder(api, "GET", "/limits")).json["limits"]["absolute"]
    assert (absolute["maxTotalVolumes"], absolute["maxTotalVolumeGigabytes"],
            absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"],
            absolute["totalSnapshotsUsed"], absolute["maxTotalSnapshots"],
            absolute["maxTotalBackups"]) == (2, 3, 1, 2, 0, -1, 0)
    before = await rows(cloud, api.project_id)
    over = await cinder(api, "POST", "/volumes", json={"volume": {"size": 2}})
    assert "gigabytes" in fault(over, "overLimit", 413)
    assert await rows(cloud, api.project_id) == before

    quota = (await cinder(api, "GET", f"/os-quota-sets/{api.project_id}")).json["quota_set"]
    assert {k: quota[k] for k in ("id", "volumes", "gigabytes", "snapshots", "backups")} == {
        "id": api.project_id, "volumes": 2, "gigabytes": 3, "snapshots": -1, "backups": 0}
    usage = (await cinder(api, "GET", f"/os-quota-sets/{api.project_id}?usage=True")
             ).json["quota_set"]
    assert usage["volumes"] == {"limit": 2, "in_use": 1, "reserved": 0, "allocated": 0}
    assert usage["gigabytes"]["in_use"] == 2
    defaults = (await cinder(api, "GET", f"/os-quota-sets/{api.project_id}/defaults")
                ).json["quota_set"]
    assert (defaults["volumes"], defaults["gigabytes"]) == (10, 1000)
    fault(await cinder(api, "GET", f"/os-quota-sets/{demo.project_id}"), "forbidden", 403)
    fault(await cinder(api, "PUT", f"/os-quota-sets/{api.project_id}",
                       json={"quota_set": {"volumes": 9}}), "forbidden", 403)

    admin = await cloud.login("admin", "admin", "admin")
    r = await cinder(admin, "PUT", f"/os-quota-sets/{api.project_id}",
                     json={"quota_set": {"volumes": 5, "gigabytes": -1}})
    assert (r.status, r.json["quota_set"]["volumes"], r.json["quota_set"]["gigabytes"]) == (
        200, 5, -1)
    compute_limits = (await api.get("/limits")).json["limits"]["absolute"]
    assert (compute_limits["maxTotalVolumes"], compute_limits["maxTotalVolumeGigabytes"]) == (5, -1)
    for bad in ({"snapshots": 3}, {"volumes": -2}, {"volumes": "many"}):
        fault(await cinder(admin, "PUT", f"/os-quota-sets/{api.project_id}",
                           json={"quota_set": bad}), "badRequest", 400)
    assert (await cinder(admin, "DELETE", f"/os-quota-sets/{api.project_id}")).status == 200
    shown = (await cinder(api, "GET", f"/os-quota-sets/{api.project_id}")).json["quota_set"]
    assert (shown["volumes"], shown["gigabytes"]) == (10, 1000)
    out = (await manage(cloud, "show-limits", name)).stdout
    assert "maxTotalVolumes" in out

    types = (await cinder(api, "GET", "/types")).json["volume_types"]
    compute_types = (await api.get("/os-volume-types")).json["volume_types"]
    assert [(t["id"], t["name"]) for t in types] == [(t["id"], t["name"]) for t in compute_types]
    assert types, "the test stack configures volume types"
    one = (await cinder(api, "GET", f"/types/{types[0]['id']}")).json["volume_type"]
    assert (one["name"], one["is_public"]) == (types[0]["name"], True)
    typed = await new_volume(api, volume_type=compute_types[0]["name"])
    assert typed["volume_type"] == compute_types[0]["name"]
    compute = (await api.get(f"/os-volumes/{typed['id']}")).json["volume"]
    assert compute["volumeType"] == compute_types[0]["name"]
    fault(await cinder(api, "GET", "/types/default"), "itemNotFound", 404)
    fault(await cinder(api, "GET", "/types/nope"), "itemNotFound", 404)

    zones = (await cinder(api, "GET", "/os-availability-zone")).json["availabilityZoneInfo"]
    compute_zones = (await api.get("/os-availability-zone")).json["availabilityZoneInfo"]
    assert zones == [{"zoneName": z["zoneName"], "zoneState": z["zoneState"]}
                     for z in compute_zones]
    assert zones and all(set(z) == {"zoneName", "zoneState"} for z in zones)


async def test_attachments_show_in_the_volume(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    sid = await active_server(api, "bs-attach")
    vol = await new_volume(api, name="data")
    await attach(api, sid, vol["id"])
    attached = await wait_volume(api, vol["id"], "in-use")
    assert attached["attachments"] == [{
        "id": vol["id"], "attachment_id": vol["id"], "volume_id": vol["id"], "server_id": sid,
        "host_name": None, "device": "/dev/vdb", "attached_at": None}]
    listed = await cinder(api, "GET", "/volumes/detail?status=in-use")
    assert [v["id"] for v in listed.json["volumes"]] == [vol["id"]]
    refused = await cinder(api, "DELETE", f"/volumes/{vol['id']}")
    assert "in-use" in fault(refused, "badRequest", 400)
    await detach(api, sid, vol["id"])
    free = await wait_volume(api, vol["id"], "available")
    assert free["attachments"] == []


async def test_volume_metadata(cloud: Cloud, alt: Api) -> None:
    api, _ = await new_project(cloud, maxServerMeta=3)
    vol = await new_volume(api, name="meta", metadata={"a": "1"})
    path = f"/volumes/{vol['id']}/metadata"
    assert (await cinder(api, "GET", path)).json == {"metadata": {"a": "1"}}
    merged = await cinder(api, "POST", path, json={"metadata": {"b": "2"}})
    assert (merged.status, merged.json) == (200, {"metadata": {"a": "1", "b": "2"}})
    item = await cinder(api, "PUT", f"{path}/c", json={"meta": {"c": "3"}})
    assert (item.status, item.json) == (200, {"meta": {"c": "3"}})
    assert (await cinder(api, "GET", f"{path}/c")).json == {"meta": {"c": "3"}}
    # The compute API reads the same metadata.
    compute = (await api.get(f"/os-volumes/{vol['id']}")).json["volume"]
    assert compute["metadata"] == {"a": "1", "b": "2", "c": "3"}

    over = await cinder(api, "POST", path, json={"metadata": {"d": "4"}})
    assert "exceeds 3" in fault(over, "overLimit", 413)
    fault(await cinder(api, "PUT", f"{path}/c", json={"meta": {"x": "3"}}), "badRequest", 400)
    fault(await cinder(api, "POST", path, json={"metadata": {"k": 1}}), "badRequest", 400)
    fault(await cinder(alt, "GET", path.replace(api.project_id, alt.project_id)),
          "itemNotFound", 404)
    fault(await cinder(alt, "POST", path, json={"metadata": {"z": "9"}}), "itemNotFound", 404)
    assert (await cinder(api, "GET", path)).json["metadata"] == {"a": "1", "b": "2", "c": "3"}

    assert (await cinder(api, "DELETE", f"{path}/a")).status == 200
    fault(await cinder(api, "DELETE", f"{path}/a"), "itemNotFound", 404)
    fault(await cinder(api, "GET", f"{path}/a"), "itemNotFound", 404)
    replaced = await cinder(api, "PUT", path, json={"metadata": {"only": "this"}})
    assert replaced.json == {"metadata": {"only": "this"}}
    shown = (await cinder(api, "GET", f"/volumes/{vol['id']}")).json["volume"]
    assert shown["metadata"] == {"only": "this"}


async def test_volume_from_an_image_is_bootable(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    vol = await new_volume(api, name="boot", imageRef=str(CIRROS_IMAGE_ID))
    assert (vol["bootable"], vol["name"]) == ("true", "boot")
    compute = (await api.get(f"/os-volumes/{vol['id']}")).json["volume"]
    assert compute["status"] == "available"
    missing = await cinder(api, "POST", "/volumes", json={"volume": {
        "size": 1, "imageRef": "00000000-0000-0000-0000-000000000000"}})
    fault(missing, "itemNotFound", 404)
    assert (await cinder(api, "DELETE", f"/volumes/{vol['id']}")).status == 202
    await wait_gone(api, f"/volumes/{vol['id']}")
