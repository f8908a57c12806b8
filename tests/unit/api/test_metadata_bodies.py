"""Metadata bodies (sections 4.4.1.11-16, 4.4.1.26-31): items, sizes, the one-item PUT."""

from __future__ import annotations

import pytest

from services.api.representation import decode_body
from services.api.resources.metadata import (
    check_items,
    item_from_body,
    metadata_from_body,
)
from shared.errors import BadRequest


def test_items_pass():
    assert metadata_from_body({"metadata": {"a": "1", "b": ""}}) == {"a": "1", "b": ""}
    assert metadata_from_body({"metadata": {}}) == {}
    assert check_items({"k" * 255: "v" * 255}) == {"k" * 255: "v" * 255}


@pytest.mark.parametrize("items", [
    {"": "v"},
    {"k" * 256: "v"},
    {"k": "v" * 256},
    {"é" * 128: "v"},  # 256 bytes in UTF-8
    {"k": 1},
    {"k": None},
    {"k": {"nested": "x"}},
])
def test_bad_items_are_400(items):
    with pytest.raises(BadRequest):
        check_items(items)


@pytest.mark.parametrize("body", [{"metadata": None}, {"metadata": "x"}, {"metadata": ["a"]}, {}])
def test_not_an_object_is_malformed(body):
    with pytest.raises(BadRequest, match="Malformed"):
        metadata_from_body(body)


def test_item_body():
    assert item_from_body({"meta": {"k": "v"}}, "k") == "v"
    # The spec's curl examples send "metadata"; one item is taken as well.
    assert item_from_body({"metadata": {"k": "v"}}, "k") == "v"


@pytest.mark.parametrize(("body", "message"), [
    ({"meta": {"other": "v"}}, "URI mismatch"),
    ({"meta": {}}, "URI mismatch"),
    ({"meta": {"k": "v", "j": "w"}}, "too many items"),
    ({"meta": "v"}, "Malformed"),
    ({"nothing": {}}, "Malformed"),
    ({"meta": {"k": 5}}, "not a string"),
])
def test_bad_item_bodies(body, message):
    with pytest.raises(BadRequest, match=message):
        item_from_body(body, "k")


def test_xml_item_and_metadata_bodies():
    one = decode_body(b'<meta xmlns="http://docs.openstack.org/compute/api/v2" key="k">v 1</meta>',
                      "application/xml")
    assert item_from_body(one, "k") == "v 1"
    many = decode_body(b'<?xml version="1.0"?><metadata><meta key="a">1</meta>'
                       b'<meta key="b">2</meta></metadata>', "application/xml")
    assert metadata_from_body(many) == {"a": "1", "b": "2"}
    empty = decode_body(b"<metadata/>", "application/xml")
    assert metadata_from_body(empty) == {}
