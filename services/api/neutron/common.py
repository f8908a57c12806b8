"""What every network endpoint handler shares: bodies, faults by Neutron type,
``fields=``, Neutron's list filters, timestamps and routes with ``.json``.

Lists are filtered here, after the views are built, rather than in SQL: a
project has a handful of networks, ports, groups and floating IPs, and
Neutron's filters name view attributes (``router:external``, ``fixed_ips``,
``port_id``...) that have no column of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from shared.errors import BadRequest, NotFound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Query parameters that are not filters: fields, paging (``limit`` and
# ``marker``, the last id of the page before) and sorting (ignored: lists come
# oldest first).
_NOT_FILTERS = frozenset({"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"})


class NeutronNotFound(NotFound):
    """A 404 that names its Neutron type (``NetworkNotFound``...), which the
    endpoint's fault renderer reads from ``neutron_type``."""

    def __init__(self, neutron_type: str, message: str) -> None:
        super().__init__(message)
        self.neutron_type = neutron_type


def not_found(kind: str, ident: object) -> NeutronNotFound:
    """Neutron's 404 for a ``kind`` (Network, Subnet, Port, SecurityGroup,
    SecurityGroupRule, FloatingIP) that the caller's project does not have."""
    words = {"Network": "Network {} could not be found.",
             "Subnet": "Subnet {} could not be found.",
             "Port": "Port {} could not be found.",
             "SecurityGroup": "Security group {} does not exist",
             "SecurityGroupRule": "Security group rule {} does not exist",
             "FloatingIP": "Floating IP {} could not be found",
             "Extension": "Extension with alias {} does not exist"}
    return NeutronNotFound(f"{kind}NotFound", words[kind].format(ident))


async def read_body(request: web.Request, resource: str) -> dict[str, Any]:
    """The ``{resource: {...}}`` object of a JSON body; 400 for anything else."""
    raw = await request.read()
    try:
        body = msgspec.json.decode(raw) if raw.strip() else None
    except msgspec.DecodeError:
        raise BadRequest("Malformed request body: not JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get(resource), dict):
        raise BadRequest(f"Invalid input: the request body must hold a '{resource}' object.")
    return body[resource]


def no_description(body: Mapping[str, Any], what: str) -> None:
    """400 for a description Nimbus cannot keep (rules and floating IPs have none;
    groups do): refused rather than silently dropped."""
    if body.get("description") not in (None, ""):
        raise BadRequest(f"Nimbus {what} have no description: leave 'description' out.")


def timestamp(value: datetime | None) -> str | None:
    """Neutron's timestamps: UTC to the second, with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(request: web.Request) -> list[str]:
    """``fields=a&fields=b`` (Neutron's clients) or ``fields=a,b`` (openstacksdk)."""
    return [f for value in request.query.getall("fields", []) for f in value.split(",") if f]


def only_fields(request: web.Request, view: dict[str, Any]) -> dict[str, Any]:
    """The view cut to the ``fields=`` asked for (all of it when none are)."""
    wanted = _fields(request)
    return {k: v for k, v in view.items() if k in wanted} if wanted else view


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, list):
        return any(_matches(v, wanted) for v in value)
    if value is None:
        return any(w in ("", "null", "None") for w in wanted)
    if isinstance(value, bool):
        return str(value).lower() in (w.lower() for w in wanted)
    return str(value) in wanted


def _fixed_ips_match(view: Mapping[str, Any], wanted: list[str]) -> bool:
    """Neutron's ``fixed_ips=ip_address=10.0.0.3`` (or ``subnet_id=...``)."""
    for text in wanted:
        key, _, value = text.partition("=")
        if not any(str(ip.get(key)) == value for ip in view.get("fixed_ips", [])):
            return False
    return True


def filtered(request: web.Request, views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The views every query filter matches (several values of one key: any of
    them), each cut to ``fields=``. A filter on an attribute the resource does
    not have is ignored, as Neutron without filter validation did."""
    keys = {k for k in request.query if k not in _NOT_FILTERS}
    out = []
    for view in views:
        keep = True
        for key in keys:
            wanted = request.query.getall(key)
            if key == "fixed_ips" and "fixed_ips" in view:
                keep = _fixed_ips_match(view, wanted)
            elif key in view:
                keep = _matches(view[key], wanted)
            if not keep:
                break
        if keep:
            out.append(view)
    return [only_fields(request, v) for v in _page(request, out)]


def _page(request: web.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The views after ``marker`` (an id), at most ``limit`` of them. openstacksdk
    asks for the next page with the last id it got while a page is full."""
    marker = request.query.get("marker")
    if marker is not None:
        ids = [str(v.get("id")) for v in views]
        views = views[ids.index(marker) + 1:] if marker in ids else []
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return views
    if not raw.isdigit():
        raise BadRequest(f"Invalid input: limit {raw!r} is not a non-negative integer.")
    limit = int(raw)
    return views[:limit] if limit else views


def add(router: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    """``method path`` and ``method path.json`` (Neutron accepted the suffix)."""
    router.add_route(method, path + ".json", handler)
    router.add_route(method, path, handler)
