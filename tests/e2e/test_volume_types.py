"""Volume types (section 4.1.13, os-volume-types): the volume service's configured
set (``standard`` and ``ssd`` by default) as Nova listed and showed them, in JSON
and XML."""

from __future__ import annotations

import uuid

from shared.db.volumes import volume_type_id
from tests.e2e.client import NS, Api


async def test_list_and_show_the_configured_types(demo: Api) -> None:
    r = await demo.get("/os-volume-types")
    assert r.status == 200
    types = {t["name"]: t for t in r.json["volume_types"]}
    assert types == {
        "ssd": {"id": str(volume_type_id("ssd")), "name": "ssd",
                "extra_specs": {"volume_backend_name": "file"}},
        "standard": {"id": str(volume_type_id("standard")), "name": "standard",
                     "extra_specs": {}},
    }
    assert [t["name"] for t in r.json["volume_types"]] == ["ssd", "standard"]   # by name
    r = await demo.get(f"/os-volume-types/{types['ssd']['id']}")
    assert r.status == 200 and r.json == {"volume_type": types["ssd"]}

    r = await demo.get("/os-volume-types.xml")
    assert r.xml.tag == f"{{{NS}}}volume_types"
    shown = {t.get("name"): t for t in r.xml.findall(f"{{{NS}}}volume_type")}
    assert shown["ssd"].get("id") == types["ssd"]["id"]
    spec = shown["ssd"].find(f"{{{NS}}}extra_specs/{{{NS}}}volume_backend_name")
    assert spec is not None and spec.text == "file"
    assert len(shown["standard"].find(f"{{{NS}}}extra_specs")) == 0
    r = await demo.get(f"/os-volume-types/{types['standard']['id']}", xml=True)
    assert r.xml.tag == f"{{{NS}}}volume_type" and r.xml.get("name") == "standard"


async def test_unknown_types_are_not_found(demo: Api) -> None:
    for bad in (str(uuid.uuid4()), "standard", "1"):
        r = await demo.get(f"/os-volume-types/{bad}")
        assert r.status == 404
        assert r.json["itemNotFound"]["message"] == f"Volume type {bad} could not be found."
