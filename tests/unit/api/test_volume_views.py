"""Volume, snapshot and volume type views against the spec's examples (4.4.13),
JSON and XML."""

from __future__ import annotations

import datetime as dt
import uuid

from services.api.representation import BLOCK_STORAGE, render
from services.api.views import volumes as views
from tests.unit.api.xmlcompare import assert_xml_equal

V2 = "http://docs.openstack.org/compute/api/v2"
VOLUME_NS = "http://docs.openstack.org/volume/api/v1"
ATOM = "http://www.w3.org/2005/Atom"

FREE = "cfe5e0a9-251a-40b8-8f4b-919af1e4ff42"
USED = "96b0b9ef-67f9-4754-b6be-ddf65c0b73aa"
SERVER = "3c5e4458-3109-4e36-a478-0777bf1c085a"


def row(**over: object) -> dict:
    base = {
        "id": uuid.UUID(FREE), "status": "available", "size_gb": 30,
        "availability_zone": "az2",
        "created_at": dt.datetime(2013, 5, 20, 13, 21, 37, tzinfo=dt.UTC),
        "display_name": None, "display_description": None, "metadata": {},
        "snapshot_id": None, "volume_type_name": None, "server_id": None, "device": None,
    }
    return {**base, **over}


def listed() -> list[dict]:
    return [views.volume(row()), views.volume(row(
        id=uuid.UUID(USED), status="in-use", size_gb=20, display_name="PaulsVolume",
        created_at=dt.datetime(2013, 5, 14, 10, 21, 41, tzinfo=dt.UTC),
        server_id=uuid.UUID(SERVER), device="vda"))]


def test_list_json_is_the_specs_example() -> None:
    # 4.4.13.1 (and .2, the same body).
    assert {"volumes": listed()} == {"volumes": [
        {"attachments": [{}], "availabilityZone": "az2",
         "createdAt": "2013-05-20T13:21:37.000000", "displayDescription": None,
         "displayName": None, "id": FREE, "metadata": {}, "size": 30, "snapshotId": None,
         "status": "available", "volumeType": "None"},
        {"attachments": [{"device": "vda", "id": USED, "serverId": SERVER, "volumeId": USED}],
         "availabilityZone": "az2", "createdAt": "2013-05-14T10:21:41.000000",
         "displayDescription": None, "displayName": "PaulsVolume", "id": USED, "metadata": {},
         "size": 20, "snapshotId": None, "status": "in-use", "volumeType": "None"},
    ]}


def test_list_xml_is_the_specs_example_in_the_compute_namespace() -> None:
    payload, _ = render({"volumes": listed()}, "xml")
    assert_xml_equal(payload, f"""
    <volumes xmlns="{V2}">
        <volume availabilityZone="az2" createdAt="2013-05-20T13:21:37.000000"
            displayDescription="None" displayName="None" id="{FREE}" size="30"
            snapshotId="None" status="available" volumeType="None">
            <attachments><attachment/></attachments>
            <metadata/>
        </volume>
        <volume availabilityZone="az2" createdAt="2013-05-14T10:21:41.000000"
            displayDescription="None" displayName="PaulsVolume" id="{USED}" size="20"
            snapshotId="None" status="in-use" volumeType="None">
            <attachments>
                <attachment device="vda" id="{USED}" serverId="{SERVER}" volumeId="{USED}"/>
            </attachments>
            <metadata/>
        </volume>
    </volumes>""")


def test_show_xml_with_a_type_and_metadata() -> None:
    view = views.volume(row(volume_type_name="ssd", metadata={"contents": "junk"},
                            snapshot_id=uuid.UUID(USED)))
    assert view["volumeType"] == "ssd" and view["snapshotId"] == USED
    payload, _ = render({"volume": view}, "xml")
    assert_xml_equal(payload, f"""
    <volume xmlns="{V2}" availabilityZone="az2" createdAt="2013-05-20T13:21:37.000000"
        displayDescription="None" displayName="None" id="{FREE}" size="30"
        snapshotId="{USED}" status="available" volumeType="ssd">
        <attachments><attachment/></attachments>
        <metadata><meta key="contents">junk</meta></metadata>
    </volume>""")


def test_attachment_shows_once_attached_and_until_detached() -> None:
    attached = {"server_id": uuid.UUID(SERVER), "device": "/dev/vdb"}
    for status in ("attaching", "available"):
        assert views.attachments(row(status=status, **attached)) == [{}]
    for status in ("in-use", "detaching"):
        (att,) = views.attachments(row(status=status, **attached))
        assert att == {"device": "/dev/vdb", "id": FREE, "serverId": SERVER, "volumeId": FREE}


def test_create_answer_is_the_specs_create_example_with_status() -> None:
    created = views.created(row(
        id=uuid.UUID("521752a6-acf6-4b2d-bc7a-119f9148cd8c"), status="creating",
        display_name="vol-001", display_description="Another volume.",
        availability_zone="az1", metadata={"contents": "junk"},
        created_at=dt.datetime(2012, 2, 14, 20, 53, 7, 123456, tzinfo=dt.UTC)), "ssd")
    assert created == {
        "id": "521752a6-acf6-4b2d-bc7a-119f9148cd8c", "display_name": "vol-001",
        "display_description": "Another volume.", "status": "creating", "size": 30,
        "volume_type": "ssd", "metadata": {"contents": "junk"}, "availability_zone": "az1",
        "snapshot_id": None, "attachments": [], "created_at": "2012-02-14T20:53:07Z"}
    assert views.created(row(), None)["volume_type"] == "None"
    payload, _ = render({"volume": created}, "xml", shape=BLOCK_STORAGE)
    assert_xml_equal(payload, f"""
    <volume xmlns="{VOLUME_NS}" id="521752a6-acf6-4b2d-bc7a-119f9148cd8c"
        display_name="vol-001" display_description="Another volume." status="creating"
        size="30" volume_type="ssd" availability_zone="az1" snapshot_id="None"
        created_at="2012-02-14T20:53:07Z">
        <metadata><meta key="contents">junk</meta></metadata>
        <attachments/>
    </volume>""")


def snapshot_row(**over: object) -> dict:
    base = {"id": uuid.UUID("3fbbcccf-d058-4502-8844-6feeffdf4cb5"), "display_name": "snap-001",
            "display_description": "Daily backup",
            "volume_id": uuid.UUID("521752a6-acf6-4b2d-bc7a-119f9148cd8c"),
            "status": "available", "size_gb": 30,
            "created_at": dt.datetime(2012, 2, 29, 3, 50, 7, tzinfo=dt.UTC)}
    return {**base, **over}


def test_snapshot_views_are_the_specs_examples() -> None:
    snap = views.snapshot(snapshot_row())
    assert snap == {"id": "3fbbcccf-d058-4502-8844-6feeffdf4cb5", "display_name": "snap-001",
                    "display_description": "Daily backup",
                    "volume_id": "521752a6-acf6-4b2d-bc7a-119f9148cd8c", "status": "available",
                    "size": 30, "created_at": "2012-02-29T03:50:07Z"}
    payload, _ = render({"snapshot": snap}, "xml")
    assert_xml_equal(payload, f"""
    <snapshot xmlns="{VOLUME_NS}" id="3fbbcccf-d058-4502-8844-6feeffdf4cb5"
        display_name="snap-001" display_description="Daily backup"
        volume_id="521752a6-acf6-4b2d-bc7a-119f9148cd8c" status="available" size="30"
        created_at="2012-02-29T03:50:07Z"/>""")
    other = views.snapshot(snapshot_row(
        id=uuid.UUID("e479997c-650b-40a4-9dfe-77655818b0d2"), display_name=None,
        display_description=None))
    payload, _ = render({"snapshots": [snap, other]}, "xml")
    assert_xml_equal(payload, f"""
    <snapshots xmlns="{VOLUME_NS}">
        <snapshot id="3fbbcccf-d058-4502-8844-6feeffdf4cb5" display_name="snap-001"
            display_description="Daily backup" volume_id="521752a6-acf6-4b2d-bc7a-119f9148cd8c"
            status="available" size="30" created_at="2012-02-29T03:50:07Z"/>
        <snapshot id="e479997c-650b-40a4-9dfe-77655818b0d2" display_name="None"
            display_description="None" volume_id="521752a6-acf6-4b2d-bc7a-119f9148cd8c"
            status="available" size="30" created_at="2012-02-29T03:50:07Z"/>
    </snapshots>""")


def test_volume_types_in_novas_shape() -> None:
    plain = views.volume_type({"id": uuid.UUID(FREE), "name": "standard", "extra_specs": {}})
    fast = views.volume_type({"id": uuid.UUID(USED), "name": "ssd",
                              "extra_specs": {"speed": "fast"}})
    assert plain == {"id": FREE, "name": "standard", "extra_specs": {}}
    payload, _ = render({"volume_types": [plain, fast]}, "xml")
    assert_xml_equal(payload, f"""
    <volume_types xmlns="{V2}">
        <volume_type id="{FREE}" name="standard"><extra_specs/></volume_type>
        <volume_type id="{USED}" name="ssd">
            <extra_specs><speed>fast</speed></extra_specs>
        </volume_type>
    </volume_types>""")
