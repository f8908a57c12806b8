"""The image endpoint's pure parts: the image view against the schema documents,
the list query (filters, sorting, paging, links), the PATCH dialects, versions."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from multidict import MultiDict

from services.api.glance import listing, patch, routes, schemas, views
from shared.errors import BadMediaType, BadRequest, Conflict, Forbidden
from tests.schema_check import validate

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(name="img", status="ACTIVE", *, size=100, created=0, metadata=None, owner="p1",
        visibility="private", disk_format="raw", image_id=None):
    when = T0 + timedelta(seconds=created)
    return {"id": image_id or uuid.uuid4(), "name": name, "status": status,
            "visibility": visibility, "owner_project_id": owner, "min_disk_gb": 10,
            "min_ram_mb": 64, "size_bytes": size, "disk_format": disk_format,
            "metadata": metadata or {}, "created_at": when, "updated_at": when,
            "deleted_at": None}


def test_the_checker_catches_what_warlock_would():
    schema = schemas.image_schema()
    bad = [{"status": "killedd"}, {"size": "3"}, {"min_ram": True}, {"custom": 3},
           {"id": "not-a-uuid"}, {"name": "x" * 256}, {"tags": [1]}, {"disk_format": "zip"}]
    for image in bad:
        with pytest.raises(AssertionError):
            validate(image, schema)


@pytest.mark.parametrize("status", ["ACTIVE", "SAVING", "ERROR"])
def test_every_view_validates_against_both_schemas(status):
    meta = {"image_type": "snapshot", "instance_uuid": str(uuid.uuid4()), "os_distro": "cirros",
            "min_ram": "not an int", "status": "bogus"}  # core names in metadata lose
    image = views.image(row(status=status, metadata=meta, disk_format="qcow2"))
    validate(image, schemas.image_schema())
    validate({"images": [image], "first": "/v2/images", "schema": "/v2/schemas/images"},
             schemas.images_schema())
    assert image["min_ram"] == 64 and image["status"] == status.lower()


def test_view_has_glance_shape_and_metadata_at_top_level():
    r = row(name="snap", size=4096, metadata={"image_type": "snapshot", "instance_uuid": "abc"})
    image = views.image(r)
    iid = str(r["id"])
    assert image == {
        "image_type": "snapshot", "instance_uuid": "abc",
        "id": iid, "name": "snap", "status": "active", "visibility": "private",
        "protected": False, "os_hidden": False, "owner": "p1", "min_disk": 10, "min_ram": 64,
        "size": 4096, "virtual_size": 4096, "disk_format": "raw", "container_format": "bare",
        "checksum": None, "os_hash_algo": None, "os_hash_value": None, "tags": [],
        "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z",
        "self": f"/v2/images/{iid}", "file": f"/v2/images/{iid}/file",
        "schema": "/v2/schemas/image"}


def test_saving_has_no_size_yet_and_qcow2_no_virtual_size():
    assert views.image(row(status="SAVING", size=0))["size"] is None
    image = views.image(row(disk_format="qcow2", size=10))
    assert (image["size"], image["virtual_size"]) == (10, None)


def test_schema_status_enum_has_error_and_glance_statuses():
    enum = schemas.image_schema()["properties"]["status"]["enum"]
    assert {"active", "saving", "queued", "killed", "error"} <= set(enum)
    assert schemas.image_schema()["additionalProperties"] == {"type": "string"}


# ---- list query ---------------------------------------------------------------

def q(**kw) -> MultiDict:
    return MultiDict(kw)


def test_in_operator_splits_with_quotes_and_plain_values_are_whole():
    assert listing.operands('in:a,"b,c", d') == ["a", "b,c", "d"]
    assert listing.operands("eq:x") == ["x"]
    assert listing.operands("Ubuntu: the name") == ["Ubuntu: the name"]
    with pytest.raises(BadRequest, match="quote"):
        listing.operands('in:"a,b')


def test_filters():
    a, b = uuid.uuid4(), uuid.uuid4()
    f = listing.parse_filters(q(id=f"in:{a},{b},junk", name="in:x,y", status="active",
                                visibility="private", owner="p1", size_min="5",
                                image_type="snapshot"))
    assert f.ids == [a, b] and f.names == ["x", "y"] and f.statuses == ["ACTIVE"]
    assert f.visibility == "private" and f.owner == "p1" and f.size_min == 5
    assert f.properties == {"image_type": "snapshot"} and not f.nothing
    assert listing.parse_filters(q(status="queued")).statuses == ["SAVING"]
    assert listing.parse_filters(q(status="killed")).statuses == []
    assert listing.parse_filters(q(visibility="all")).visibility is None
    for nothing in (q(visibility="shared"), q(visibility="community"), q(tag="x"),
                    q(os_hidden="true"), q(protected="true"), q(container_format="ovf")):
        assert listing.parse_filters(nothing).nothing, nothing
    assert not listing.parse_filters(q(member_status="pending", os_hidden="false",
                                       container_format="in:ovf,bare")).nothing


@pytest.mark.parametrize(("query", "words"), [
    (q(visibility="everyone"), "Invalid visibility value: everyone"),
    (q(member_status="maybe"), "Invalid status: maybe"),
    (q(os_hidden="yes"), "Invalid value 'yes' for 'os_hidden' filter"),
    (q(protected="1"), "Invalid value '1' for 'protected' filter"),
    (q(size_min="big"), "non-numeric"),
    (q(**{"changes-since": "2020-01-01"}), "no longer available on v2"),
    (q(sort_key="owner"), "Invalid sort key: owner"),
    (q(sort_dir="up"), "Invalid sort direction: up"),
    (q(sort="name:asc", sort_key="name"), "cannot be combined"),
    (q(limit="x"), "limit param must be an integer"),
    (q(limit="-1"), "limit param must be positive"),
])
def test_bad_queries_are_400_in_glance_words(query, words):
    with pytest.raises(BadRequest, match=re.escape(words)):
        listing.parse_query(query)


def test_sort_parsing_and_tie_breakers():
    assert listing.parse_query(q()).sort == [("created_at", "desc"), ("id", "desc")]
    assert listing.parse_query(q(sort="name:asc,size")).sort == [
        ("name", "asc"), ("size", "desc"), ("created_at", "desc"), ("id", "desc")]
    multi = MultiDict([("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")])
    assert listing.parse_query(multi).sort == [
        ("name", "asc"), ("size", "asc"), ("created_at", "asc"), ("id", "asc")]
    with pytest.raises(BadRequest, match="does not match"):
        listing.parse_sort(MultiDict([("sort_key", "name"), ("sort_dir", "asc"),
                                      ("sort_dir", "desc"), ("sort_dir", "asc")]))


def test_limit_defaults_to_25_and_caps_at_1000():
    assert listing.parse_query(q()).limit == 25
    assert listing.parse_query(q(limit="5000")).limit == 1000
    assert listing.parse_query(q(limit="0")).limit == 0


def test_sort_and_page_after_a_marker_even_one_filtered_out():
    rows = [row(name=n, size=s, created=c) for n, s, c in
            [("b", 3, 1), ("a", 3, 2), ("c", 1, 3), ("a", 2, 4)]]
    names = lambda rs: [(r["name"], r["size_bytes"]) for r in rs]
    by_name = listing.parse_sort(q(sort="name:asc,size:asc"))
    assert names(listing.page(rows, by_name, 10)) == [("a", 2), ("a", 3), ("b", 3), ("c", 1)]
    newest = listing.parse_sort(q())
    assert names(listing.page(rows, newest, 2)) == [("a", 2), ("c", 1)]
    assert names(listing.page(rows, newest, 2, marker_row=rows[2])) == [("a", 3), ("b", 3)]
    # The marker is not among the filtered rows: its place in the order still counts.
    outside = row(name="bb", size=9, created=0)
    assert names(listing.page(rows, by_name, 10, marker_row=outside)) == [("c", 1)]
    assert listing.page(rows, newest, 0) == []


def test_equal_keys_page_without_overlap():
    rows = [row(name="same", created=0) for _ in range(7)]
    sort = listing.parse_sort(q(sort="name:asc"))
    seen, marker = [], None
    while True:
        got = listing.page(rows, sort, 3, marker)
        seen += [r["id"] for r in got]
        if len(got) < 3:
            break
        marker = got[-1]
    assert sorted(seen) == sorted(r["id"] for r in rows) and len(seen) == 7


def test_links_repeat_the_query_with_the_last_id():
    items = [{"id": "i1"}, {"id": "i2"}]
    out = listing.links(MultiDict(name="a b", limit="2", marker="old"), items, 2)
    assert out["first"] == "/v2/images?name=a+b&limit=2"
    assert out["schema"] == "/v2/schemas/images"
    nxt = urlsplit(out["next"])
    assert nxt.path == "/v2/images"
    assert dict(parse_qsl(nxt.query)) == {"name": "a b", "limit": "2", "marker": "i2"}
    repeated = MultiDict([("sort_key", "name"), ("sort_key", "size"), ("limit", "2")])
    assert parse_qsl(urlsplit(listing.links(repeated, items, 2)["next"]).query) == [
        ("sort_key", "name"), ("sort_key", "size"), ("limit", "2"), ("marker", "i2")]
    assert listing.links(MultiDict(), items, 25) == {"first": "/v2/images",
                                                     "schema": "/v2/schemas/images"}


# ---- PATCH ------------------------------------------------------------------------

def test_both_dialects_parse_to_the_same_changes():
    d10 = patch.parse_changes([{"op": "replace", "path": "/name", "value": "n"},
                               {"op": "add", "path": "/a~1b", "value": "v"},
                               {"op": "remove", "path": "/c"}], 10)
    d4 = patch.parse_changes([{"replace": "/name", "value": "n"}, {"add": "/a~1b", "value": "v"},
                              {"remove": "/c"}], 4)
    assert d10 == d4 == [patch.Change("replace", "name", "n"), patch.Change("add", "a/b", "v"),
                         patch.Change("remove", "c")]


@pytest.mark.parametrize(("body", "fault", "words"), [
    ({"op": "replace"}, BadRequest, "JSON array"),
    ([1], BadRequest, "Operations must be JSON objects"),
    ([{"op": "move", "path": "/x"}], BadRequest, "Invalid operation: `move`"),
    ([{"op": "add", "value": "x"}], BadRequest, "Unable to find 'path'"),
    ([{"op": "add", "path": "x", "value": "v"}], BadRequest, "does not start with"),
    ([{"op": "add", "path": "/a/b", "value": "v"}], BadRequest, "Invalid JSON pointer"),
    ([{"op": "add", "path": "/x"}], BadRequest, 'requires a member named "value"'),
    ([{"op": "replace", "path": "/status", "value": "active"}], Forbidden,
     "Attribute 'status' is read-only."),
    ([{"op": "replace", "path": "/id", "value": "x"}], Forbidden, "read-only"),
    ([{"op": "replace", "path": "/size", "value": 1}], Forbidden, "read-only"),
    ([{"op": "add", "path": "/os_glance_x", "value": "v"}], Forbidden, "reserved"),
    ([{"op": "replace", "path": "/owner", "value": "me"}], Forbidden, "cannot be changed"),
    ([{"op": "replace", "path": "/visibility", "value": "public"}], Forbidden,
     "cannot be changed"),
])
def test_refused_operations(body, fault, words):
    with pytest.raises(fault, match=re.escape(words)):
        patch.parse_changes(body, 10)


def test_apply_changes_name_and_properties_in_order():
    changes = patch.parse_changes([
        {"op": "replace", "path": "/name", "value": "  new  "},
        {"op": "add", "path": "/k", "value": "1"}, {"op": "replace", "path": "/k", "value": "2"},
        {"op": "remove", "path": "/gone"}, {"op": "add", "path": "/keep", "value": "again"}], 10)
    assert patch.apply("old", {"gone": "x", "keep": "y"}, changes, 10) == (
        "new", {"k": "2", "keep": "again"})


@pytest.mark.parametrize(("ops", "draft", "fault", "words"), [
    ([{"op": "replace", "path": "/nope", "value": "v"}], 10, Conflict, "nope does not exist"),
    ([{"op": "remove", "path": "/nope"}], 10, Conflict, "nope does not exist"),
    ([{"add": "/here", "value": "v"}], 4, Conflict, "here already present"),
    ([{"op": "remove", "path": "/name"}], 10, Forbidden, "may not be removed"),
    ([{"op": "replace", "path": "/name", "value": "  "}], 10, BadRequest, "blank"),
    ([{"op": "replace", "path": "/name", "value": None}], 10, BadRequest, "not a string"),
    ([{"op": "replace", "path": "/name", "value": "x" * 256}], 10, BadRequest, "255"),
    ([{"op": "add", "path": "/n", "value": 3}], 10, BadRequest, "not a string"),
    ([{"op": "add", "path": "/n", "value": "v" * 256}], 10, BadRequest, "longer than 255"),
    ([{"op": "add", "path": "/" + "k" * 256, "value": "v"}], 10, BadRequest, "longer than 255"),
])
def test_apply_faults(ops, draft, fault, words):
    changes = patch.parse_changes(ops, draft)
    with pytest.raises(fault, match=re.escape(words)):
        patch.apply("name", {"here": "x"}, changes, draft)


def test_add_of_present_property_replaces_in_the_v21_dialect():
    changes = patch.parse_changes([{"op": "add", "path": "/here", "value": "new"}], 10)
    assert patch.apply("n", {"here": "x"}, changes, 10) == ("n", {"here": "new"})


def test_unsupported_patch_type_names_the_accepted_ones():
    fault = patch.UnsupportedPatchType("no")
    assert isinstance(fault, BadMediaType) and fault.http_status == 415
    assert fault.headers == {"Accept-Patch": "application/openstack-images-v2.0-json-patch, "
                                             "application/openstack-images-v2.1-json-patch"}


def test_versions_list_v2_9_current_down_to_v2_0():
    body = routes.versions("http://h:9292")["versions"]
    assert [v["id"] for v in body] == [f"v2.{n}" for n in range(9, -1, -1)]
    assert [v["status"] for v in body] == ["CURRENT"] + ["SUPPORTED"] * 9
    assert {v["links"][0]["href"] for v in body} == {"http://h:9292/v2/"}
