"""os-quota-sets: a project's quotas under Nova's names, the same limits /limits shows
and creates enforce; read by the project, changed only by admins; JSON and XML."""

from __future__ import annotations

from tests.e2e.client import NS, Api, Cloud
from tests.e2e.projects import new_project

# Nova's name -> the /limits key holding the same value.
AS_LIMITS = {"cores": "maxTotalCores", "floating_ips": "maxTotalFloatingIps",
             "injected_file_content_bytes": "maxPersonalitySize",
             "injected_files": "maxPersonality", "instances": "maxTotalInstances",
             "key_pairs": "maxTotalKeypairs", "metadata_items": "maxServerMeta",
             "ram": "maxTotalRAMSize", "security_group_rules": "maxSecurityGroupRules",
             "security_groups": "maxSecurityGroups"}


async def _put(cloud: Cloud, api: Api, tenant: str, body, **kw):
    return await cloud.request("PUT", api.path(f"/os-quota-sets/{tenant}"), token=api.token,
                               json=body, **kw)


async def _limits(api: Api) -> dict:
    return (await api.get("/limits")).json["limits"]["absolute"]


async def test_show_is_the_projects_limits_under_novas_names(demo):
    r = await demo.get(f"/os-quota-sets/{demo.project_id}")
    assert r.status == 200, r.raw
    quotas = r.json["quota_set"]
    limits = await _limits(demo)
    assert quotas == {"id": demo.project_id, "fixed_ips": -1, "injected_file_path_bytes": 255,
                      **{name: limits[key] for name, key in AS_LIMITS.items()}}
    # The spec's defaults, which the demo project keeps.
    assert (quotas["instances"], quotas["ram"], quotas["cores"]) == (40, 15360, -1)
    defaults = (await demo.get(f"/os-quota-sets/{demo.project_id}/defaults")).json["quota_set"]
    assert defaults == quotas


async def test_show_in_xml(demo):
    r = await demo.get(f"/os-quota-sets/{demo.project_id}.xml")
    assert r.status == 200 and r.xml.tag == f"{{{NS}}}quota_set"
    assert r.xml.get("id") == demo.project_id
    values = {child.tag.split("}")[1]: child.text for child in r.xml}
    assert values["instances"] == "40" and values["ram"] == "15360" and values["cores"] == "-1"
    assert len(values) == 12


async def test_a_member_cannot_read_another_project_nor_change_any(cloud, demo, alt):
    r = await demo.get(f"/os-quota-sets/{alt.project_id}")
    assert r.status == 403 and "forbidden" in r.json
    r = await demo.get(f"/os-quota-sets/{alt.project_id}/detail")
    assert r.status == 403
    before = await _limits(demo)
    r = await _put(cloud, demo, demo.project_id, {"quota_set": {"instances": 1000}})
    assert r.status == 403, r.raw
    assert "compute_extension:quotas:update" in r.json["forbidden"]["message"]
    r = await cloud.request("DELETE", demo.path(f"/os-quota-sets/{demo.project_id}"),
                            token=demo.token)
    assert r.status == 403
    assert await _limits(demo) == before


async def test_admin_sets_a_quota_that_limits_and_creates_obey(cloud):
    admin = await cloud.login("admin", "admin", "admin")
    api, _ = await new_project(cloud)
    # An admin reads any project's quotas.
    r = await admin.get(f"/os-quota-sets/{api.project_id}")
    assert r.status == 200 and r.json["quota_set"]["instances"] == 40

    r = await _put(cloud, admin, api.project_id,
                   {"quota_set": {"instances": 1, "metadata_items": "7", "cores": -1}})
    assert r.status == 200, r.raw
    assert "id" not in r.json["quota_set"]  # as Nova's update answered
    assert (r.json["quota_set"]["instances"], r.json["quota_set"]["metadata_items"]) == (1, 7)
    limits = await _limits(api)
    assert (limits["maxTotalInstances"], limits["maxServerMeta"], limits["maxImageMeta"]) == \
        (1, 7, 7)
    assert (await api.get(f"/os-quota-sets/{api.project_id}")).json["quota_set"]["instances"] == 1

    first = await api.boot(name="q1")
    assert first.status == 202, first.raw
    over = await api.boot(name="q2")
    assert over.status == 413 and "instances" in over.json["overLimit"]["message"]

    detail = (await api.get(f"/os-quota-sets/{api.project_id}/detail")).json["quota_set"]
    assert detail["instances"] == {"in_use": 1, "limit": 1, "reserved": 0}
    assert detail["ram"]["in_use"] == (await _limits(api))["totalRAMUsed"] > 0
    assert detail["id"] == api.project_id

    # Below what is in use: refused, nothing changed.
    r = await _put(cloud, admin, api.project_id, {"quota_set": {"instances": 0, "ram": 1}})
    assert r.status == 400 and "less than already used" in r.json["badRequest"]["message"]
    assert (await _limits(api))["maxTotalRAMSize"] == 15360

    # Back to the defaults.
    r = await cloud.request("DELETE", admin.path(f"/os-quota-sets/{api.project_id}"),
                            token=admin.token)
    assert r.status == 202
    limits = await _limits(api)
    assert (limits["maxTotalInstances"], limits["maxServerMeta"]) == (40, 50)
    assert (await api.boot(name="q3")).status == 202


async def test_bad_updates_are_refused_and_change_nothing(cloud):
    admin = await cloud.login("admin", "admin", "admin")
    api, _ = await new_project(cloud)
    before = await _limits(api)
    for body, words in [
        ({"quota_set": {"instances": -2}}, ">= -1"),
        ({"quota_set": {"instances": "many"}}, "integer"),
        ({"quota_set": {"instances": 1.5}}, "integer"),
        ({"quota_set": {"instances": True}}, "integer"),
        ({"quota_set": {"instances": 2**31}}, "<="),
        ({"quota_set": {"instances": 3, "gigawatts": 1}}, "Bad key(s) gigawatts"),
        ({"quota_set": {"fixed_ips": 10}}, "fixed"),
        ({"quota_set": [1]}, "quota_set"),
    ]:
        r = await _put(cloud, admin, api.project_id, body)
        assert r.status == 400, (body, r.raw)
        assert words in r.json["badRequest"]["message"], (body, r.json)
    assert await _limits(api) == before
    r = await _put(cloud, admin, "no-such-project", {"quota_set": {"instances": 3}})
    assert r.status == 404


async def test_update_in_xml(cloud):
    admin = await cloud.login("admin", "admin", "admin")
    api, _ = await new_project(cloud)
    r = await cloud.request(
        "PUT", admin.path(f"/os-quota-sets/{api.project_id}"), token=admin.token, xml=True,
        headers={"Content-Type": "application/xml"},
        data=f'<quota_set id="{api.project_id}"><cores>3</cores><key_pairs>2</key_pairs></quota_set>')
    assert r.status == 200, r.raw
    values = {child.tag.split("}")[1]: child.text for child in r.xml}
    assert (values["cores"], values["key_pairs"]) == ("3", "2")
    limits = await _limits(api)
    assert (limits["maxTotalCores"], limits["maxTotalKeypairs"]) == (3, 2)
