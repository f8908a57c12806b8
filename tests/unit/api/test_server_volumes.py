"""The block device mappings of create server, and device names (server_volumes,
volume_attachments): what Nova's two syntaxes say, checked for form."""

from __future__ import annotations

from uuid import UUID

import pytest

from services.api.resources.server_volumes import VolumeRequest, parse
from services.api.resources.volume_attachments import choose_device
from shared.errors import BadRequest

V1 = "4b0c1d0e-0000-4000-8000-000000000001"
V2 = "4b0c1d0e-0000-4000-8000-000000000002"


def test_v1_entry_at_the_root_device_is_the_boot_volume() -> None:
    m = parse({"block_device_mapping": [
        {"volume_id": V1, "device_name": "vda", "delete_on_termination": "1"},
        {"volume_id": V2, "device_name": "/dev/vdc", "delete_on_termination": "false"}]})
    assert m.volumes == [VolumeRequest(UUID(V1), "/dev/vda", True, True),
                         VolumeRequest(UUID(V2), "/dev/vdc", False, False)]
    assert m.boot == m.volumes[0]


def test_v2_boot_index_zero_is_the_boot_volume_and_an_image_entry_names_the_image() -> None:
    m = parse({"block_device_mapping_v2": [
        {"boot_index": "0", "uuid": V1, "source_type": "volume", "destination_type": "volume",
         "delete_on_termination": True},
        {"boot_index": -1, "uuid": V2, "source_type": "volume", "destination_type": "volume"}]})
    assert m.boot == VolumeRequest(UUID(V1), "/dev/vda", True, True)
    assert m.volumes[1] == VolumeRequest(UUID(V2), None, False, False)
    img = parse({"block_device_mapping_v2": [
        {"boot_index": 0, "uuid": "some-image", "source_type": "image",
         "destination_type": "local"}]})
    assert img.volumes == [] and img.image_ref == "some-image"


def test_no_mapping_is_no_volume() -> None:
    assert parse({}).volumes == [] and parse({}).boot is None


@pytest.mark.parametrize("server", [
    {"block_device_mapping": [], "block_device_mapping_v2": []},
    {"block_device_mapping": "vda"},
    {"block_device_mapping": [{"volume_id": V1}]},                       # no device_name
    {"block_device_mapping": [{"volume_id": "x", "device_name": "vda"}]},
    {"block_device_mapping": [{"snapshot_id": V1, "device_name": "vda"}]},
    {"block_device_mapping": [{"volume_id": V1, "device_name": "vda",
                               "delete_on_termination": "maybe"}]},
    {"block_device_mapping_v2": [{"uuid": V1, "source_type": "blank", "boot_index": 0}]},
    {"block_device_mapping_v2": [{"uuid": V1, "source_type": "volume", "boot_index": "x"}]},
    {"block_device_mapping_v2": [{"uuid": V1, "source_type": "volume", "boot_index": 0},
                                 {"uuid": V1, "source_type": "volume", "boot_index": 1}]},
    {"block_device_mapping_v2": [{"uuid": V1, "source_type": "volume", "boot_index": 0},
                                 {"uuid": V2, "source_type": "volume", "boot_index": 0}]},
    {"block_device_mapping_v2": [{"uuid": "img", "source_type": "image",
                                  "destination_type": "local"}]},
    {"block_device_mapping_v2": [{"uuid": V1, "source_type": "volume"}] * 30},
])
def test_bad_mappings_are_400(server: dict) -> None:
    with pytest.raises(BadRequest):
        parse(server)


def test_devices_are_chosen_after_the_root_disk_and_checked_when_given() -> None:
    assert choose_device(None, {"/dev/vda"}) == "/dev/vdb"
    assert choose_device("auto", {"/dev/vda", "/dev/vdb"}) == "/dev/vdc"
    assert choose_device("vdk", {"/dev/vda"}) == "/dev/vdk"
    assert choose_device("/dev/xvdb", {"/dev/vda"}) == "/dev/xvdb"
    for bad in ("/dev/vda", "/dev/../etc", "/dev/vd b", "/etc/passwd", 7):
        with pytest.raises(BadRequest):
            choose_device(bad, {"/dev/vda"})
    full = {f"/dev/vd{c}" for c in "abcdefghijklmnopqrstuvwxyz"}
    with pytest.raises(BadRequest):
        choose_device(None, full)
