"""``limit`` on every paginated list (section 3.6), in JSON and XML: 0 is an empty page
with no next link, as in Nova; a negative or non-integer limit is 400 in Nova's words."""

from __future__ import annotations

import uuid

from tests.e2e.acting import active_server, delete_and_wait
from tests.e2e.client import Api, Cloud
from tests.e2e.paging import fault_name, ids_of, next_href
from tests.e2e.projects import new_project
from tests.e2e.volumes import available_snapshot, available_volume, delete_volumes

# Path -> the body's list key.
LISTS = {"/servers": "servers", "/servers/detail": "servers", "/images": "images",
         "/images/detail": "images", "/flavors": "flavors", "/flavors/detail": "flavors",
         "/os-volumes": "volumes", "/os-volumes/detail": "volumes",
         "/os-snapshots": "snapshots", "/os-snapshots/detail": "snapshots"}


async def test_limit_0_is_an_empty_page_of_every_list(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    sid = await active_server(api, "paging")
    vol = await available_volume(api)
    await available_snapshot(api, vol["id"])
    try:
        for path, key in LISTS.items():
            # Something to list: the empty page is the limit's doing.
            full = await api.get(path)
            assert full.status == 200 and ids_of(full, key), (path, full.raw)
            for query in ("limit=0", "limit=-0", "limit=000"):
                r = await api.get(f"{path}?{query}")
                assert r.status == 200, (path, query, r.raw)
                assert r.json == {key: []}, (path, query, r.json)   # and no next link
            r = await api.get(f"{path}?limit=0", xml=True)
            assert r.status == 200 and r.xml.tag.endswith("}" + key), (path, r.raw)
            assert list(r.xml) == [] and next_href(r, key) is None, (path, r.raw)
            # After a marker too; a marker that names nothing is still refused.
            r = await api.get(f"{path}?limit=0&marker={ids_of(full, key)[0]}")
            assert r.status == 200 and r.json == {key: []}, (path, r.raw)
            r = await api.get(f"{path}?limit=0&marker={uuid.uuid4()}")
            assert r.status == 400 and fault_name(r) == "badRequest", (path, r.raw)
    finally:
        await delete_and_wait(api, sid)
        await delete_volumes(api)


async def test_negative_or_non_integer_limit_is_400(demo: Api) -> None:
    for path in LISTS:
        for query, message in (("limit=-1", "limit param must be positive"),
                               ("limit=-1000", "limit param must be positive"),
                               ("limit=two", "limit param must be an integer: 'two'"),
                               ("limit=1.5", "limit param must be an integer: '1.5'"),
                               ("limit=", "limit param must be an integer: ''")):
            r = await demo.get(f"{path}?{query}")
            assert r.status == 400 and r.json["badRequest"]["message"] == message, (path, r.raw)
        r = await demo.get(f"{path}?limit=-1", xml=True)
        assert r.status == 400 and fault_name(r) == "badRequest", (path, r.raw)
