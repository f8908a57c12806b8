"""Server views from a database row: the answers of update (4.4.1.9) and rebuild
(4.4.1.18) against the spec's examples in JSON and XML, get's detail with the
extension attributes those two leave out, and os-hide-server-addresses (the view
and its setting)."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from services.api.representation import render
from services.api.settings import ApiSettings
from services.api.views import servers as views
from shared.config import load_section
from shared.states import VmState
from tests.unit.api.xmlcompare import assert_xml_equal

V2 = "http://docs.openstack.org/compute/api/v2"
ATOM = "http://www.w3.org/2005/Atom"
BASE = "http://region-b.geo-1.compute.hpcloudsvc.com"
PROJECT = "10979209027984"
SID = "94166e08-57a1-4910-b529-120650e8887e"
IMG = "8c096c29-a666-4b82-99c4-c77dc70cfb40"
VOL = "cfe5e0a9-251a-40b8-8f4b-919af1e4ff42"

EXTENSION_KEYS = {"key_name", "config_drive", "security_groups", "OS-EXT-STS:vm_state",
                  "OS-EXT-STS:task_state", "OS-EXT-STS:power_state",
                  "OS-EXT-AZ:availability_zone", "os-extended-volumes:volumes_attached"}


def row(**over: object) -> dict:
    """A server row as ``queries.servers.get`` returns it: the update example's server."""
    base = {
        "id": uuid.UUID(SID), "name": "NameChange_Example", "vm_state": "active",
        "task_state": None, "power_state": 1, "project_id": PROJECT,
        "user_id": "52552375567809", "host": "compute-7",
        "created_at": dt.datetime(2014, 4, 15, 18, 38, 47, tzinfo=dt.UTC),
        "updated_at": dt.datetime(2014, 4, 16, 17, 6, 7, tzinfo=dt.UTC),
        "access_ipv4": "", "access_ipv6": "", "progress": 0, "key_name": "USEast",
        "config_drive": True, "image_id": uuid.UUID(IMG), "flavor_id": "100", "metadata": {},
        "addresses": [{"network_name": "CloudHorizonNetwork", "address": "10.0.0.7",
                       "version": 4, "mac": "fa:16:3e:32:1a:2c", "floating_ips": []}],
        "security_groups": ["default"], "availability_zone": "az2", "fault": None,
        "volumes_attached": [uuid.UUID(VOL)],
    }
    return {**base, **over}


def link(path: str, rel: str) -> dict:
    prefix = f"{BASE}/v2/{PROJECT}" if rel == "self" else f"{BASE}/{PROJECT}"
    return {"href": f"{prefix}/{path}", "rel": rel}


def update_example(host_id: str) -> dict:
    """The JSON answer of 4.4.1.9, every attribute and no other."""
    return {
        "status": "ACTIVE", "updated": "2014-04-16T17:06:07Z", "hostId": host_id,
        "addresses": {"CloudHorizonNetwork": [{"version": 4, "addr": "10.0.0.7"}]},
        "links": [link(f"servers/{SID}", "self"), link(f"servers/{SID}", "bookmark")],
        "image": {"id": IMG, "links": [link(f"images/{IMG}", "bookmark")]},
        "flavor": {"id": "100", "links": [link("flavors/100", "bookmark")]},
        "id": SID, "user_id": "52552375567809", "name": "NameChange_Example",
        "created": "2014-04-15T18:38:47Z", "tenant_id": PROJECT, "accessIPv4": "",
        "accessIPv6": "", "progress": 0, "metadata": {},
    }


def test_update_answer_is_the_specs_example_json() -> None:
    view = views.core(row(), BASE, PROJECT)
    assert view == update_example(views.host_id(PROJECT, "compute-7"))
    assert msgspec.json.decode(render({"server": view}, "json")[0]) == {"server": view}


def test_update_answer_is_the_specs_example_xml() -> None:
    host_id = views.host_id(PROJECT, "compute-7")
    payload, _ = render({"server": views.core(row(), BASE, PROJECT)}, "xml")
    assert_xml_equal(payload, f"""
    <server xmlns="{V2}" xmlns:atom="{ATOM}" status="ACTIVE" updated="2014-04-16T17:06:07Z"
        hostId="{host_id}" name="NameChange_Example" created="2014-04-15T18:38:47Z"
        userId="52552375567809" tenantId="{PROJECT}" accessIPv4="" accessIPv6=""
        progress="0" id="{SID}">
        <image id="{IMG}">
            <atom:link href="{BASE}/{PROJECT}/images/{IMG}" rel="bookmark" />
        </image>
        <flavor id="100">
            <atom:link href="{BASE}/{PROJECT}/flavors/100" rel="bookmark" />
        </flavor>
        <metadata />
        <addresses>
            <network id="CloudHorizonNetwork"><ip version="4" addr="10.0.0.7" /></network>
        </addresses>
        <atom:link href="{BASE}/v2/{PROJECT}/servers/{SID}" rel="self" />
        <atom:link href="{BASE}/{PROJECT}/servers/{SID}" rel="bookmark" />
    </server>""")
    assert b"xmlns:OS-EXT" not in payload


def test_rebuild_answer_is_the_specs_example_xml() -> None:
    # 4.4.1.18: the core view plus adminPass, here mid-rebuild with new metadata.
    current = row(name="Instance_Test7", task_state="rebuilding", metadata={"key-1": "value-1"},
                  addresses=[{"network_name": "CloudHorizonNetwork", "address": "10.0.0.20",
                              "version": 4, "mac": "fa:16:3e:00:00:01",
                              "floating_ips": ["15.126.0.9"]}])
    view = views.core(current, BASE, PROJECT) | {"adminPass": "t26DD4ikri4F"}
    assert view["status"] == "REBUILD" and not EXTENSION_KEYS & set(view)
    # Fixed and floating alike, without their type or MAC (as .../ips shows them).
    assert view["addresses"] == {"CloudHorizonNetwork": [{"version": 4, "addr": "10.0.0.20"},
                                                         {"version": 4, "addr": "15.126.0.9"}]}
    payload, _ = render({"server": view}, "xml")
    host_id = views.host_id(PROJECT, "compute-7")
    assert_xml_equal(payload, f"""
    <server xmlns="{V2}" xmlns:atom="{ATOM}" status="REBUILD" updated="2014-04-16T17:06:07Z"
        hostId="{host_id}" name="Instance_Test7" created="2014-04-15T18:38:47Z"
        userId="52552375567809" tenantId="{PROJECT}" accessIPv4="" accessIPv6=""
        progress="0" id="{SID}" adminPass="t26DD4ikri4F">
        <image id="{IMG}">
            <atom:link href="{BASE}/{PROJECT}/images/{IMG}" rel="bookmark" />
        </image>
        <flavor id="100">
            <atom:link href="{BASE}/{PROJECT}/flavors/100" rel="bookmark" />
        </flavor>
        <metadata><meta key="key-1">value-1</meta></metadata>
        <addresses>
            <network id="CloudHorizonNetwork">
                <ip version="4" addr="10.0.0.20" /><ip version="4" addr="15.126.0.9" />
            </network>
        </addresses>
        <atom:link href="{BASE}/v2/{PROJECT}/servers/{SID}" rel="self" />
        <atom:link href="{BASE}/{PROJECT}/servers/{SID}" rel="bookmark" />
    </server>""")


def test_detail_is_core_with_the_extension_attributes() -> None:
    core, detail = views.core(row(), BASE, PROJECT), views.detail(row(), BASE, PROJECT)
    assert set(detail) - set(core) == EXTENSION_KEYS
    assert {k: v for k, v in detail.items() if k in core and k != "addresses"} == {
        k: v for k, v in core.items() if k != "addresses"}
    assert detail["addresses"] == {"CloudHorizonNetwork": [{
        "version": 4, "addr": "10.0.0.7", "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:32:1a:2c"}]}
    assert (detail["key_name"], detail["config_drive"], detail["security_groups"]) == (
        "USEast", "True", [{"name": "default"}])
    assert detail["os-extended-volumes:volumes_attached"] == [{"id": VOL}]


def test_fault_of_an_errored_server_is_core() -> None:
    failed = row(vm_state="error", fault=(500, "boom", "host compute-7 said no",
                                          dt.datetime(2014, 4, 16, 17, 0, 0, tzinfo=dt.UTC)))
    for view in (views.core(failed, BASE, PROJECT), views.detail(failed, BASE, PROJECT)):
        assert view["fault"] == {"code": 500, "message": "boom", "created": "2014-04-16T17:00:00Z"}
    admin = views.core(failed, BASE, PROJECT, is_admin=True)
    assert admin["fault"]["details"] == "host compute-7 said no"


# ---- os-hide-server-addresses ---------------------------------------------------

def test_addresses_are_hidden_in_the_given_states_only() -> None:
    building = row(vm_state="building", task_state="spawning")
    assert views.detail(building, BASE, PROJECT, hide_addresses_in={"building"})["addresses"] == {}
    assert views.detail(building, BASE, PROJECT)["addresses"]  # nothing hidden by default
    active = views.detail(row(), BASE, PROJECT, hide_addresses_in={"building"})
    assert active["addresses"]["CloudHorizonNetwork"][0]["addr"] == "10.0.0.7"
    # Nova's extension did not touch the answers of update and rebuild.
    assert views.core(building, BASE, PROJECT)["addresses"]
    payload, _ = render({"server": views.detail(building, BASE, PROJECT,
                                                hide_addresses_in={"building"})}, "xml")
    assert b"<addresses/>" in payload


@pytest.mark.parametrize(("raw", "states"), [
    ("building", {VmState.BUILDING}), ("", set()), (" , ", set()),
    ("Building, STOPPED,error", {VmState.BUILDING, VmState.STOPPED, VmState.ERROR}),
])
def test_hide_server_address_states_setting(raw, states) -> None:
    settings = load_section(ApiSettings, "api",
                            environ={"NIMBUS_API_HIDE_SERVER_ADDRESS_STATES": raw})
    assert settings.hidden_address_states() == states
    assert ApiSettings().hidden_address_states() == {VmState.BUILDING}  # Nova's default


def test_a_state_that_is_no_vm_state_fails_at_load() -> None:
    with pytest.raises(SystemExit, match=r"\[api\].*names no vm_state: spawning"):
        load_section(ApiSettings, "api", environ={"NIMBUS_API_HIDE_SERVER_ADDRESS_STATES":
                                                  "building,spawning"})


def test_a_server_without_groups_shows_an_empty_list() -> None:
    view = views.detail(row(security_groups=[]), BASE, PROJECT)
    assert view["security_groups"] == []
    payload, _ = render({"server": view}, "xml")
    assert b"<security_groups/>" in payload
