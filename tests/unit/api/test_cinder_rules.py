"""The block-storage endpoint's request rules that need no database: microversion
negotiation, list sorting, filters and paging, and the create body's translation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from services.api.cinder.common import metadata_filter, page, sort_params
from services.api.cinder.versions import VersionNotAcceptable, negotiate
from services.api.cinder.volumes import compute_body
from shared.errors import BadRequest, NotFound


def _request(path_qs: str, **headers: str):
    request = make_mocked_request("GET", path_qs, headers=CIMultiDict(headers))
    request["principal"] = SimpleNamespace(project_id="p1", is_admin=False)
    return request


@pytest.mark.parametrize(("headers", "version"), [
    ({}, (3, 0)),
    ({"OpenStack-API-Version": "volume 3.0"}, (3, 0)),
    ({"OpenStack-API-Version": "volume latest"}, (3, 0)),
    ({"OpenStack-API-Version": "compute 2.1"}, (3, 0)),          # names no volume version
    ({"OpenStack-API-Version": "compute 2.1, Volume 3.0"}, (3, 0)),
    ({"OpenStack-Volume-microversion": "3.0"}, (3, 0)),
])
def test_negotiated_versions(headers, version):
    assert negotiate(_request("/v3/p1/volumes", **headers)) == version


@pytest.mark.parametrize("asked", ["volume 3.1", "volume 2.0", "volume 4.0"])
def test_versions_outside_the_range_are_406(asked):
    with pytest.raises(VersionNotAcceptable) as err:
        negotiate(_request("/v3/p1/volumes", **{"OpenStack-API-Version": asked}))
    assert err.value.http_status == 406
    assert "Minimum is 3.0 and maximum is 3.0" in err.value.message


@pytest.mark.parametrize("asked", ["volume 3", "volume 3.x", "volume 03.0", "volume 3.01"])
def test_malformed_versions_are_400(asked):
    with pytest.raises(BadRequest, match="invalid format"):
        negotiate(_request("/v3/p1/volumes", **{"OpenStack-API-Version": asked}))


def test_sort_params():
    assert sort_params(_request("/v")) == [("created_at", "desc")]
    assert sort_params(_request("/v?sort=name:asc,size")) == [("name", "asc"), ("size", "desc")]
    assert sort_params(_request("/v?sort_key=display_name&sort_dir=ASC")) == [("name", "asc")]
    for bad in ("sort=colour", "sort=name:sideways", "sort=name&sort_key=size"):
        with pytest.raises(BadRequest):
            sort_params(_request(f"/v?{bad}"))


def test_metadata_filter_reads_json_and_python_literals():
    assert metadata_filter(None) == {}
    assert metadata_filter('{"a": "b"}') == {"a": "b"}
    assert metadata_filter("{'a': 'b'}") == {"a": "b"}
    for bad in ("[1]", "{'a': 1}", "__import__('os')", "{"):
        with pytest.raises(BadRequest):
            metadata_filter(bad)


def _views():
    return [{"id": f"id{i}", "name": name, "size": size, "created_at": f"2026-01-0{i + 1}"}
            for i, (name, size) in enumerate([("c", 1), ("a", 2), ("b", 1)])]


def test_page_orders_marks_and_cuts():
    body = page(_request("/v3/p1/volumes?sort=name:asc&limit=2"), _views(), "volumes", "volumes",
                lambda v: {"id": v["id"]})
    assert body["volumes"] == [{"id": "id1"}, {"id": "id2"}]
    assert body["volumes_links"][0]["href"].endswith("/v3/p1/volumes?sort=name%3Aasc&limit=2"
                                                     "&marker=id2")
    rest = page(_request("/v3/p1/volumes?sort=name:asc&limit=2&marker=id2"), _views(),
                "volumes", "volumes")
    assert [v["name"] for v in rest["volumes"]] == ["c"] and "volumes_links" not in rest
    by_size = page(_request("/v3/p1/volumes?sort=size:asc,name:desc"), _views(), "v", "volumes")
    assert [v["name"] for v in by_size["volumes"]] == ["c", "b", "a"]
    with pytest.raises(NotFound, match="Marker nope could not be found"):
        page(_request("/v3/p1/volumes?marker=nope"), _views(), "volumes", "volumes")


def test_compute_body_translates_and_refuses_what_nimbus_lacks():
    assert compute_body({"size": 1, "name": "v", "description": "d", "image_id": "i",
                         "source_volid": None, "multiattach": False, "junk": 1}) == {
        "size": 1, "display_name": "v", "display_description": "d", "imageRef": "i"}
    for field, value in (("source_volid", "x"), ("backup_id", "x"), ("group_id", "g"),
                         ("consistencygroup_id", "c"), ("multiattach", True)):
        with pytest.raises(BadRequest):
            compute_body({"size": 1, field: value})
