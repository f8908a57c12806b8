"""The servers' fast XML path (``xml_servers``) writes the very bytes of the generic
walk (``xml_writer``), for bodies of every shape the server views make, and hands
the walk what it does not write."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.api.representation import xml_servers, xml_writer
from services.api.views import servers as views

BASE = "http://127.0.0.1:8774"
PROJECT = "4cb49e5aff4347748d9bc331132ed5cd"


def row(n: int = 0, **over: object) -> dict:
    """A server row as the list and get queries give it."""
    base = {
        "id": uuid.UUID(int=n + 1), "name": f"web-{n}", "vm_state": "active",
        "task_state": None, "power_state": 1, "project_id": PROJECT,
        "user_id": "52552375567809", "host": f"compute-{n % 3}",
        "created_at": dt.datetime(2026, 12, 6, 9, 12, n % 60, tzinfo=dt.UTC),
        "updated_at": dt.datetime(2026, 12, 6, 9, 13, n % 60, tzinfo=dt.UTC),
        "access_ipv4": "", "access_ipv6": "", "progress": 0, "key_name": "mykey",
        "config_drive": False, "image_id": uuid.UUID(int=99), "flavor_id": "100",
        "metadata": {"role": "web", "n": str(n)},
        "addresses": [{"network_name": "private", "address": f"10.0.0.{n % 250 + 2}",
                       "version": 4, "mac": "fa:16:3e:00:00:01", "floating_ips": []}],
        "security_groups": ["default"], "availability_zone": "az1", "fault": None,
        "volumes_attached": [],
    }
    return {**base, **over}


VARIANTS = {
    "plain": {},
    "building, no host, no task": {"vm_state": "building", "task_state": "scheduling",
                                   "host": None},
    "error with a fault": {"vm_state": "error", "fault": (
        500, "No valid host was found. RAM", "Traceback: compute-1 said no", dt.datetime(
            2026, 12, 6, 9, 14, tzinfo=dt.UTC))},
    "error with a 400 fault and no details": {"vm_state": "error", "fault": (
        400, "Bad image", None, dt.datetime(2026, 12, 6, 9, 14, tzinfo=dt.UTC))},
    "no image (boot from volume)": {"image_id": None},
    "no key, config drive": {"key_name": None, "config_drive": True},
    "no metadata, no groups": {"metadata": {}, "security_groups": []},
    "volumes": {"volumes_attached": [uuid.UUID(int=7), uuid.UUID(int=8)]},
    "floating, IPv6 and two networks": {"addresses": [
        {"network_name": "private", "address": "10.0.0.5", "version": 4,
         "mac": "fa:16:3e:00:00:02", "floating_ips": ["15.126.0.1", "15.126.0.2"]},
        {"network_name": "v6", "address": "fd00::5", "version": 6,
         "mac": "fa:16:3e:00:00:03", "floating_ips": []}]},
    "no addresses": {"addresses": []},
    "characters to escape": {"name": 'a & b <c> "d"\ttab\nline\rret', "metadata": {
        'k&<>"': 'v & <w> "x"\n\r\t', "empty": ""}, "security_groups": ["web & db"]},
    "beyond ASCII": {"name": "serveur-é-ü-漢字-🚀", "metadata": {"clé": "valeur ☃"}},
    "characters XML cannot hold": {"name": "bell\x07", "metadata": {"k": "esc\x1b[0m"}},
    "U+FFFE": {"metadata": {"k": "a\ufffeb"}},
    "access addresses, progress": {"access_ipv4": "15.126.0.9", "access_ipv6": "fd00::9",
                                   "progress": 42, "task_state": "rebooting"},
}


def generic(body: dict) -> bytes:
    """What the walk writes for ``body``, the fast path left out."""
    saved = xml_writer.render_servers
    xml_writer.render_servers = lambda body, nsmap: None
    try:
        return xml_writer.render_xml(body)
    finally:
        xml_writer.render_servers = saved


def fast_path_wrote(body: dict) -> bool:
    nsmap = {None: "http://docs.openstack.org/compute/api/v2", "atom": "http://www.w3.org/2005/Atom"}
    xml_writer._scan_prefixes(body, nsmap)
    return xml_servers.render_servers(body, nsmap) is not None


def bodies(over: dict, *, hidden: tuple[str, ...] = ("building",)) -> dict[str, dict]:
    rows = [row(n) for n in range(3)] + [row(3, **over)] + [row(4)]
    first = [row(0, **over)] + rows[1:]
    detail = [views.detail(r, BASE, PROJECT, hide_addresses_in=hidden) for r in rows]
    next_link = [{"rel": "next", "href": f"{BASE}/v2/{PROJECT}/servers/detail?limit=5&"
                                         f"name=web&marker={uuid.UUID(int=5)}"}]
    return {
        "get": {"server": views.detail(row(3, **over), BASE, PROJECT,
                                       hide_addresses_in=hidden)},
        "get as admin": {"server": views.detail(row(3, **over), BASE, PROJECT, is_admin=True,
                                                hide_addresses_in=())},
        "update": {"server": views.core(row(3, **over), BASE, PROJECT)},
        "detail list": {"servers": detail},
        "detail list, the variant first": {"servers": [
            views.detail(r, BASE, PROJECT, hide_addresses_in=hidden) for r in first]},
        "detail page with a next link": {"servers": detail, "servers_links": next_link},
        "brief page with a next link": {"servers": [views.brief(r, BASE, PROJECT) for r in rows],
                                        "servers_links": next_link},
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_fast_path_writes_what_the_walk_writes(variant: str) -> None:
    for name, body in bodies(VARIANTS[variant]).items():
        assert xml_writer.render_xml(body) == generic(body), (variant, name)


@pytest.mark.parametrize("variant", [v for v in VARIANTS
                                     if v not in ("characters XML cannot hold", "U+FFFE")])
def test_the_fast_path_writes_the_servers_views_make(variant: str) -> None:
    for name, body in bodies(VARIANTS[variant]).items():
        assert fast_path_wrote(body), (variant, name)


@pytest.mark.parametrize("body", [
    {"server": {"id": "1", "name": "x\x07"}},  # lxml's cleaning
    {"server": {"id": "1", "created": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}},  # not a string
    {"server": {"id": "1", "OS-EXT-SRV-ATTR:host": "h"}, "other": 1},  # beside the server
    {"server": {"id": "1", "unknown": {"a": "b"}}},  # an object no view makes
    {"server": {"id": "1", "hidden": True}},  # a boolean: the walk writes "True"
    {"servers": [{"id": "1", "links": [{"rel": "self", "href": None}]}]},
])
def test_what_the_fast_path_does_not_write_goes_to_the_walk(body: dict) -> None:
    assert not fast_path_wrote(body)
    assert xml_writer.render_xml(body) == generic(body)


def test_empty_list_and_empty_page_with_links() -> None:
    for body in ({"servers": []},
                 {"servers": [], "servers_links": [{"rel": "next", "href": "http://x/?a=1&b=2"}]}):
        assert fast_path_wrote(body)
        assert xml_writer.render_xml(body) == generic(body)
