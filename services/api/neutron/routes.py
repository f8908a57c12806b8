"""The network endpoint's routes (a Neutron v2.0 subset): version discovery, the
v2.0 resource list, the extensions served, and each resource's module.

The extensions listed are the ones whose attributes and calls are served:
clients look some up before using them (the openstack CLI asks for
``Availability Zone`` and, finding none, lists compute's zones only).
"""

from __future__ import annotations

from aiohttp import web

from services.api.neutron import floating_ips, networks, quotas, security_groups
from services.api.neutron.common import add, filtered, not_found, only_fields
from services.api.side_apps import endpoint_url, json_response

_UPDATED = "2013-01-01T10:00:00-00:00"

EXTENSIONS = (
    ("security-group", "security-group",
     "The security groups extension."),
    ("external-net", "Neutron external network",
     "Adds external network attribute to network resource."),
    ("quotas", "Quota management support",
     "Expose functions for quotas management per tenant"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-timestamp", "Resource timestamps",
     ("Adds created_at and updated_at fields to all Neutron resources that have "
      "Neutron standard attributes.")),
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled."),
)

# (singular, collection) of every resource served under /v2.0.
RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules"),
             ("floatingip", "floatingips"), ("quota", "quotas"))


def _extension(alias: str, name: str, description: str) -> dict[str, object]:
    return {"alias": alias, "name": name, "description": description,
            "updated": _UPDATED, "links": []}


async def list_versions(request: web.Request) -> web.Response:
    href = f"{endpoint_url(request)}/v2.0/"
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"rel": "self", "href": href}]}]})


async def list_resources(request: web.Request) -> web.Response:
    base = f"{endpoint_url(request)}/v2.0"
    return json_response({"resources": [
        {"name": name, "collection": collection,
         "links": [{"rel": "self", "href": f"{base}/{collection}"}]}
        for name, collection in RESOURCES]})


async def list_extensions(request: web.Request) -> web.Response:
    return json_response({"extensions": filtered(request,
                                                 [_extension(*e) for e in EXTENSIONS])})


async def show_extension(request: web.Request) -> web.Response:
    alias = request.match_info["alias"]
    for ext in EXTENSIONS:
        if ext[0] == alias:
            return json_response({"extension": only_fields(request, _extension(*ext))})
    raise not_found("Extension", alias)


def setup(router: web.UrlDispatcher) -> None:
    router.add_get("/", list_versions)
    add(router, "GET", "/v2.0", list_resources)
    router.add_get("/v2.0/", list_resources)
    add(router, "GET", "/v2.0/extensions", list_extensions)
    add(router, "GET", "/v2.0/extensions/{alias}", show_extension)
    networks.setup(router)
    security_groups.setup(router)
    floating_ips.setup(router)
    quotas.setup(router)
