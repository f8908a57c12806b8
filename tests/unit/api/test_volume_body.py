"""The create volume and create snapshot bodies (4.4.13.3, 4.4.13.6), the size rules
that need the source, and which volumes may be snapshotted."""

from __future__ import annotations

import uuid

import pytest

from services.api.representation import decode_body
from services.api.resources import volume_body as body
from services.api.resources.volume_snapshots import check_source
from shared.errors import BadRequest, OverLimit, SnapshotNotFound, VolumeNotFound

SNAP = "ad39719b-6f56-4eb3-8c7d-b1ae059ce057"
IMAGE = "2f1e4f8e-4f5e-4c53-9a59-3b3c3c6f0c11"
VOL = "521752a6-acf6-4b2d-bc7a-119f9148cd8c"


def volume(**fields: object) -> body.VolumeRequest:
    return body.parse_volume({"volume": fields}, max_meta=50)


def test_the_specs_json_example_parses() -> None:
    req = volume(display_name="vol-001", display_description="Another volume.", size=30,
                 volume_type="289da7f8-6440-407c-9fb4-7db01ec49164",
                 metadata={"contents": "junk"}, availability_zone="az1", snapshot_id=SNAP)
    assert req == body.VolumeRequest(
        size=30, display_name="vol-001", display_description="Another volume.",
        volume_type="289da7f8-6440-407c-9fb4-7db01ec49164", metadata={"contents": "junk"},
        availability_zone="az1", snapshot_id=uuid.UUID(SNAP), image_id=None)


def test_the_specs_xml_example_parses_as_json_would() -> None:
    # The spec's example, with its two typos fixed: the root closed at once and an
    # unquoted attribute value make it no XML at all.
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
        <volume xmlns="http://docs.openstack.org/volume/api/v1">
            <display_name>vol-001</display_name>
            <display_description>Another volume.</display_description>
            <size>30</size>
            <volume_type>289da7f8-6440-407c-9fb4-7db01ec49164</volume_type>
            <availability_zone>az1</availability_zone>
            <snapshot_id>ad39719b-6f56-4eb3-8c7d-b1ae059ce057</snapshot_id>
            <metadata><meta key="contents">junk</meta></metadata>
        </volume>"""
    req = body.parse_volume(decode_body(xml, "application/xml", "volume"), max_meta=50)
    assert req == volume(display_name="vol-001", display_description="Another volume.",
                         size=30, volume_type="289da7f8-6440-407c-9fb4-7db01ec49164",
                         metadata={"contents": "junk"}, availability_zone="az1",
                         snapshot_id=SNAP)
    # Nova's deserializer read attributes: so do we.
    attrs = b'<volume size="2" display_name="a"/>'
    assert body.parse_volume(decode_body(attrs, "application/xml", "volume"),
                             max_meta=50) == volume(size=2, display_name="a")


@pytest.mark.parametrize("size, want", [(1, 1), ("30", 30), (" 7 ", 7), (2**31 - 1, 2**31 - 1)])
def test_sizes(size: object, want: int) -> None:
    assert volume(size=size).size == want


@pytest.mark.parametrize("size", [0, -1, "0", "-3", "1.5", 1.5, True, "", "ten", [], {},
                                  2**31, "9" * 5000])
def test_bad_sizes_are_400(size: object) -> None:
    with pytest.raises(BadRequest, match="Invalid volume size"):
        volume(size=size)


def test_size_is_required_unless_a_snapshot_gives_it() -> None:
    with pytest.raises(BadRequest, match="a size is needed"):
        volume(display_name="x")
    with pytest.raises(BadRequest, match="a size is needed"):
        volume(imageRef=IMAGE)
    assert volume(snapshot_id=SNAP).size is None


def test_sources() -> None:
    assert volume(size=1, imageRef=IMAGE).image_id == uuid.UUID(IMAGE)
    link = f"http://127.0.0.1:8774/v2/demo/images/{IMAGE}"
    assert volume(size=1, imageRef=link).image_id == uuid.UUID(IMAGE)
    assert volume(size=1, imageRef="").image_id is None
    with pytest.raises(BadRequest, match="Invalid imageRef provided."):
        volume(size=1, imageRef="not-an-image")
    with pytest.raises(BadRequest, match="Invalid imageRef provided."):
        volume(size=1, imageRef={"id": IMAGE})
    with pytest.raises(BadRequest, match="not both"):
        volume(size=1, imageRef=IMAGE, snapshot_id=SNAP)
    # A snapshot id that cannot name a snapshot is as unknown as any other.
    for bad in ("nope", "", 12, {"id": SNAP}):
        with pytest.raises(SnapshotNotFound):
            volume(size=1, snapshot_id=bad)


def test_texts_type_and_zone() -> None:
    assert volume(size=1, display_name=None).display_name is None
    assert volume(size=1, volume_type="").volume_type is None     # Cinder: empty is none
    with pytest.raises(BadRequest, match="display_name"):
        volume(size=1, display_name=5)
    with pytest.raises(BadRequest, match="display_description"):
        volume(size=1, display_description="d" * 256)
    assert volume(size=1, display_description="d" * 255).display_description == "d" * 255
    with pytest.raises(BadRequest, match="availability_zone"):
        volume(size=1, availability_zone=["az1"])
    with pytest.raises(BadRequest, match="volume_type"):
        volume(size=1, volume_type={"name": "x"})


def test_metadata_rules_are_server_metadatas() -> None:
    with pytest.raises(BadRequest, match="metadata"):
        volume(size=1, metadata=["a"])
    with pytest.raises(BadRequest, match="not a string"):
        volume(size=1, metadata={"a": 1})
    with pytest.raises(BadRequest, match="blank"):
        volume(size=1, metadata={"": "v"})
    with pytest.raises(BadRequest, match="longer than 255 bytes"):
        volume(size=1, metadata={"k": "é" * 128})
    many = {f"k{i}": "v" for i in range(3)}
    assert body.parse_volume({"volume": {"size": 1, "metadata": many}}, max_meta=3).metadata == many
    with pytest.raises(OverLimit, match="exceeds 2"):
        body.parse_volume({"volume": {"size": 1, "metadata": many}}, max_meta=2)
    assert body.parse_volume({"volume": {"size": 1, "metadata": many}}, max_meta=-1).metadata


@pytest.mark.parametrize("raw", [{}, {"volume": None}, {"volume": "x"}, {"volume": []}])
def test_a_body_without_a_volume_object_is_400(raw: dict) -> None:
    with pytest.raises(BadRequest, match="'volume' object"):
        body.parse_volume(raw, max_meta=50)


def test_volume_size_against_its_source() -> None:
    assert body.volume_size(None, snapshot_gb=30) == 30
    assert body.volume_size(40, snapshot_gb=30) == 40
    with pytest.raises(BadRequest, match="cannot be smaller than the snapshot size 30GB"):
        body.volume_size(20, snapshot_gb=30)
    gib = 1024**3
    assert body.volume_size(1, image_min_disk_gb=0, image_bytes=13 * 1024**2) == 1
    assert body.volume_size(2, image_min_disk_gb=0, image_bytes=2 * gib) == 2
    with pytest.raises(BadRequest, match="Size of specified image 3GB is larger than volume "
                                         "size 2GB"):
        body.volume_size(2, image_min_disk_gb=0, image_bytes=2 * gib + 1)
    with pytest.raises(BadRequest, match="minDisk size 8GB"):
        body.volume_size(5, image_min_disk_gb=8, image_bytes=gib)
    assert body.image_floor_gb(None) == body.image_floor_gb(0) == 1


def test_snapshot_body() -> None:
    req = body.parse_snapshot({"snapshot": {"display_name": "snap-001",
                                            "display_description": "Daily backup",
                                            "volume_id": VOL, "force": True}})
    assert req == body.SnapshotRequest(uuid.UUID(VOL), "snap-001", "Daily backup", True)
    xml = (b'<snapshot xmlns="http://docs.openstack.org/volume/api/v1" display_name="snap-001" '
           b'display_description="Daily backup" volume_id="' + VOL.encode() + b'" force="true"/>')
    assert body.parse_snapshot(decode_body(xml, "application/xml", "snapshot")) == req
    assert body.parse_snapshot({"snapshot": {"volume_id": VOL}}).force is False
    for value, want in (("False", False), ("TRUE", True), (False, False), (None, False)):
        assert body.parse_snapshot({"snapshot": {"volume_id": VOL, "force": value}}).force is want
    for bad in ("yes", "1", 1, "", [], {}):
        with pytest.raises(BadRequest, match="for force"):
            body.parse_snapshot({"snapshot": {"volume_id": VOL, "force": bad}})
    for missing in ({}, {"volume_id": None}, {"volume_id": ""}):
        with pytest.raises(BadRequest, match="volume_id"):
            body.parse_snapshot({"snapshot": missing})
    for bad in ("nope", 7, [VOL]):
        with pytest.raises(VolumeNotFound):
            body.parse_snapshot({"snapshot": {"volume_id": bad}})


def test_which_volumes_may_be_snapshotted() -> None:
    vid = uuid.UUID(VOL)
    check_source(vid, "available", force=False)
    check_source(vid, "in-use", force=True)
    with pytest.raises(BadRequest, match="in-use: use force"):
        check_source(vid, "in-use", force=False)
    for status in ("creating", "attaching", "detaching", "deleting", "error", "error_deleting"):
        with pytest.raises(BadRequest, match=f"must be available to snapshot it, but its status "
                                             f"is {status}"):
            check_source(vid, status, force=True)
