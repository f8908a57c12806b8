"""The rules behind Nova's operator and quota resources, without a cloud: quota
names and update checks, usage arithmetic and window parsing, host views and
their XML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from services.api.quotas import DEFAULT_LIMITS
from services.api.representation import render
from services.api.resources.quota_sets import MAX_INT, parse_update, quota_set
from services.api.resources.tenant_usage import parse_time
from services.api.views import compute_hosts as hosts_views
from services.api.views import usage as usage_views
from shared.db.hosts import HostState
from shared.errors import BadRequest

V2 = "{http://docs.openstack.org/compute/api/v2}"
T0 = datetime(2014, 1, 1, tzinfo=UTC)


def _host(name: str, zone: str, *, alive: bool = True, disabled: bool = False, hid: int = 1,
          **used: int) -> HostState:
    return HostState(host=name, availability_zone=zone, total_ram_mb=4096, total_disk_gb=100,
                     total_vcpus=8, alive=alive, disabled=disabled, id=hid,
                     last_heartbeat=T0, **used)


# ---- quota sets ----------------------------------------------------------

def test_quota_set_names_the_default_limits_as_nova():
    q = quota_set(DEFAULT_LIMITS)
    assert q == {"cores": -1, "fixed_ips": -1, "floating_ips": 10,
                 "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
                 "injected_files": 5, "instances": 40, "key_pairs": 100, "metadata_items": 50,
                 "ram": 15360, "security_group_rules": 20, "security_groups": 10}
    assert list(q) == sorted(q)


def test_update_takes_integers_and_their_strings_and_ignores_nova_extras():
    body = {"quota_set": {"instances": "5", "cores": -1, "ram": MAX_INT, "id": "p",
                          "tenant_id": "p", "force": "True", "fixed_ips": -1}}
    assert parse_update(body) == {"instances": 5, "cores": -1, "ram": MAX_INT}


@pytest.mark.parametrize("value", [-2, MAX_INT + 1, 1.5, "1.5", "x", True, None, [1], {}])
def test_update_refuses_what_nova_refused(value):
    with pytest.raises(BadRequest):
        parse_update({"quota_set": {"instances": value}})


def test_update_refuses_unknown_keys_and_changes_to_fixed_quotas():
    with pytest.raises(BadRequest, match=r"Bad key\(s\) a, b in quota_set"):
        parse_update({"quota_set": {"b": 1, "a": 1, "cores": 1}})
    with pytest.raises(BadRequest, match="fixed"):
        parse_update({"quota_set": {"injected_file_path_bytes": 1024}})
    with pytest.raises(BadRequest):
        parse_update({"quota_set": "cores=1"})


def test_quota_set_xml_is_novas_template():
    xml = etree.fromstring(render({"quota_set": {"id": "p1", **quota_set(DEFAULT_LIMITS)}},
                                  "xml")[0])
    assert xml.tag == f"{V2}quota_set" and xml.get("id") == "p1"
    assert xml.find(f"{V2}instances").text == "40"


# ---- usage ---------------------------------------------------------------

def test_hours_are_the_overlap_of_life_and_window_up_to_now():
    start, stop = T0, T0 + timedelta(hours=10)
    now = T0 + timedelta(hours=4)
    assert usage_views.hours(T0 + timedelta(hours=1), None, start, stop, now) == 3.0
    assert usage_views.hours(T0 - timedelta(hours=5), T0 + timedelta(hours=2), start, stop,
                             now) == 2.0
    assert usage_views.hours(T0 - timedelta(hours=5), T0 - timedelta(hours=1), start, stop,
                             now) == 0.0
    assert usage_views.hours(stop + timedelta(hours=1), None, start, stop, now) == 0.0
    # A window that ended in the past charges up to its end, not to now.
    later = T0 + timedelta(days=3)
    assert usage_views.hours(T0 + timedelta(hours=1), None, start, stop, later) == 9.0


def test_tenant_usage_totals_are_flavor_times_hours():
    flavor = {"name": "standard.small", "vcpus": 2, "ram_mb": 2048, "disk_gb": 30,
              "ephemeral_gb": 10}
    rows = [{"id": "s1", "project_id": "p", "name": "a", "flavor": flavor, "vm_state": "active",
             "launched_at": T0, "deleted_at": None},
            {"id": "s2", "project_id": "p", "name": "b", "flavor": flavor, "vm_state": "deleted",
             "launched_at": T0, "deleted_at": T0 + timedelta(hours=1)}]
    now = T0 + timedelta(hours=2)
    u = usage_views.tenant_usage("p", rows, T0, T0 + timedelta(hours=5), now, detailed=True)
    assert u["total_hours"] == 3.0
    assert (u["total_vcpus_usage"], u["total_memory_mb_usage"], u["total_local_gb_usage"]) == (
        6.0, 6144.0, 120.0)
    live, gone = u["server_usages"]
    assert (live["state"], live["uptime"], live["ended_at"]) == ("active", 7200, None)
    assert (gone["state"], gone["uptime"], gone["local_gb"]) == ("terminated", 3600, 40)
    assert u["start"] == "2014-01-01T00:00:00.000000"
    assert "server_usages" not in usage_views.tenant_usage("p", rows, T0, now, now,
                                                           detailed=False)


@pytest.mark.parametrize("text, expected", [
    ("2014-01-31T10:00:00", datetime(2014, 1, 31, 10, tzinfo=UTC)),
    ("2014-01-31T10:00:00.250000", datetime(2014, 1, 31, 10, 0, 0, 250000, tzinfo=UTC)),
    ("2014-01-31 10:00:00.5", datetime(2014, 1, 31, 10, 0, 0, 500000, tzinfo=UTC)),
    ("2014-01-31T10:00:00Z", datetime(2014, 1, 31, 10, tzinfo=UTC)),
    ("2014-01-31T10:00:00+02:00", datetime(2014, 1, 31, 8, tzinfo=UTC)),
])
def test_window_bounds_in_novas_formats(text, expected):
    assert parse_time(text, T0) == expected


@pytest.mark.parametrize("text", ["", "2014-01-31", "2014-02-30T00:00:00", "yesterday",
                                  "2014-01-31T25:00:00", "2014-01-31T10:00:00junk"])
def test_unreadable_window_bounds_are_400(text):
    with pytest.raises(BadRequest, match="Datetime is in invalid format"):
        parse_time(text, T0)
    assert parse_time(None, T0) == T0


# ---- hosts ---------------------------------------------------------------

def test_services_and_zone_detail_from_heartbeats():
    up = _host("c1", "az1", hid=1)
    down = _host("c2", "az1", alive=False, hid=2)
    off = _host("c3", "az2", disabled=True, hid=3)
    assert hosts_views.service(down) == {
        "id": 2, "binary": "nova-compute", "host": "c2", "zone": "az1", "status": "enabled",
        "state": "down", "updated_at": "2014-01-01T00:00:00.000000", "disabled_reason": None}
    assert hosts_views.service(off)["status"] == "disabled"
    detail = hosts_views.zones_detail([up, down, off])
    assert [z["zoneName"] for z in detail] == ["az1", "az2"]
    assert detail[0]["zoneState"] == {"available": True}
    assert detail[0]["hosts"]["c2"]["nova-compute"]["available"] is False
    assert detail[1]["zoneState"] == {"available": False}
    assert detail[1]["hosts"]["c3"]["nova-compute"]["active"] is False
    xml = etree.fromstring(render({"availabilityZoneInfo": detail}, "xml")[0])
    hosts = xml.find(f"{V2}availabilityZone").find(f"{V2}hosts")
    assert [h.get("name") for h in hosts] == ["c1", "c2"]
    state = hosts[1].find(f"{V2}services").find(f"{V2}service").find(f"{V2}serviceState")
    assert state.get("available") == "False" and state.get("active") == "True"


def test_hypervisor_detail_and_statistics():
    a = hosts_views.hypervisor_detail(_host("c1", "az1", used_vcpus=3, used_ram_mb=1024,
                                            used_disk_gb=20), (2, 1))
    b = hosts_views.hypervisor_detail(_host("c2", "az2", hid=2, alive=False), (0, 0))
    assert (a["vcpus"], a["vcpus_used"], a["memory_mb_used"], a["free_ram_mb"]) == (8, 3, 1024,
                                                                                     3072)
    assert (a["local_gb_used"], a["free_disk_gb"], a["running_vms"]) == (20, 80, 2)
    assert (a["current_workload"], a["state"], b["state"]) == (1, "up", "down")
    assert a["service"] == {"host": "c1", "id": 1, "disabled_reason": None}
    stats = hosts_views.statistics([a, b])
    assert (stats["count"], stats["vcpus"], stats["vcpus_used"], stats["running_vms"]) == (
        2, 16, 3, 2)
    assert stats["free_ram_mb"] == 4096 + 3072
