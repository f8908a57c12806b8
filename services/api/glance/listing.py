"""``GET /v2/images``'s query, as Glance reads it, and its paging (pure functions).

Query parameters (Glance's ``RequestDeserializer.index``, its words in faults):

* ``limit``: 25 by default (Glance's ``limit_param_default``), at most 1000;
  the checks are the compute API's (``pagination.parse_limit``, same words as
  Glance's). ``marker``: an image id the caller can see, else 400.
* ``sort_key``/``sort_dir`` (repeatable) or ``sort=key:dir,key:dir`` (not both);
  keys ``name, status, container_format, disk_format, size, id, created_at,
  updated_at``; default ``created_at`` ``desc``. As Glance's database query does,
  ``created_at`` then ``id`` break ties, so pages never overlap.
* ``id``, ``name``, ``status``, ``disk_format``, ``container_format``: a value,
  or ``in:a,b,"c,d"`` (openstack ``server list --long`` sends ``id=in:...``).
  Glance reads any ``word:`` prefix as an operator and refuses unknown ones
  (400), which breaks a name with a colon; here only ``in:`` and ``eq:`` are
  operators and any other value is matched whole.
* ``visibility`` (public, private, shared, community, all; else 400): Nimbus has
  no shared or community images, so those are empty lists. ``owner``,
  ``size_min``/``size_max``, ``member_status`` (checked; it concerns shared
  images only), ``protected`` and ``os_hidden`` (true: empty; no image is
  either), ``tag`` (Nimbus images have no tags: any tag is an empty list).
* ``changes-since`` is 400, as Glance v2 answers. Any other parameter is a
  custom property that must equal the value (``?image_type=snapshot``).

Sorting and paging happen here rather than in SQL: a project sees the
public catalog and its own snapshots (tens of rows), the filters narrow it in
SQL first, and Glance's eight sort keys in any order and direction would make
keyset SQL built per request; one pure function, unit-tested, is simpler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from multidict import MultiMapping

from services.api.glance.views import CONTAINER_FORMAT, STATUS_FILTERS
from services.api.resources.common import parse_uuid
from services.api.resources.pagination import parse_limit
from shared.errors import BadRequest

DEFAULT_LIMIT = 25
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
_COLUMN = {"name": "name", "status": "status", "disk_format": "disk_format",
           "size": "size_bytes", "id": "id", "created_at": "created_at",
           "updated_at": "updated_at"}
VISIBILITIES = ("public", "private", "shared", "community", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
_BOOLEANS = ("true", "false")
_KNOWN = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir", "id", "name", "status",
                    "disk_format", "container_format", "visibility", "owner", "size_min",
                    "size_max", "member_status", "protected", "os_hidden", "tag",
                    "changes-since"})


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """What the SQL narrows the visible images to; None is no filter."""

    ids: list[UUID] | None = None
    names: list[str] | None = None
    statuses: list[str] | None = None
    disk_formats: list[str] | None = None
    visibility: str | None = None
    owner: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    properties: dict[str, str] = {}
    nothing: bool = False
    """True when the query can match no Nimbus image (a tag, a shared visibility...)."""


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    filters: Filters
    sort: list[tuple[str, str]]
    limit: int
    marker: str | None = None


def split_values(value: str) -> list[str]:
    """``in:``'s list: comma-separated, a double-quoted item may hold commas."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise BadRequest(f"Invalid filter value {value}. The quote is not closed.")
    items.append("".join(current).strip())
    return items


def operands(value: str) -> list[str]:
    """The values an ``id``/``name``/``status``... filter matches."""
    if value.startswith("in:"):
        return split_values(value[3:])
    if value.startswith("eq:"):
        return [value[3:]]
    return [value]


def _choice(query: MultiMapping[str], key: str, allowed: Sequence[str], message: str
            ) -> str | None:
    value = query.get(key)
    if value is not None and value not in allowed:
        raise BadRequest(message % value)
    return value


def _size(query: MultiMapping[str], key: str) -> int | None:
    value = query.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Unable to filter on a range with a non-numeric value: "
                         f"{key}={value}") from None


def parse_sort(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """[(key, dir)], Glance's rules, ending with its tie-breakers."""
    def key_of(key: str) -> str:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                             f"{', '.join(SORT_KEYS)}.")
        return key

    def dir_of(direction: str) -> str:
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
        return direction

    pairs: list[tuple[str, str]]
    if "sort" in query:
        if "sort_key" in query or "sort_dir" in query:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        pairs = []
        for part in query["sort"].strip().split(","):
            key, _, direction = part.partition(":")
            pairs.append((key_of(key.strip()), dir_of(direction.strip() or "desc")))
    else:
        keys = [key_of(k.strip()) for k in query.getall("sort_key", [])] or ["created_at"]
        dirs = [dir_of(d.strip()) for d in query.getall("sort_dir", [])] or ["desc"]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        pairs = [(k, dirs[i] if len(dirs) > 1 else dirs[0]) for i, k in enumerate(keys)]
    named = {k for k, _ in pairs}
    default_dir = pairs[-1][1]
    pairs += [(k, default_dir) for k in ("created_at", "id") if k not in named]
    return pairs


def parse_filters(query: MultiMapping[str]) -> Filters:
    if query.get("changes-since"):
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    visibility = _choice(query, "visibility", VISIBILITIES, "Invalid visibility value: %s")
    _choice(query, "member_status", MEMBER_STATUSES, "Invalid status: %s")
    os_hidden = (query.get("os_hidden") or "false").lower()
    if os_hidden not in _BOOLEANS:
        raise BadRequest(f"Invalid value '{os_hidden}' for 'os_hidden' filter. "
                         "Valid values are 'true' or 'false'.")
    protected = _choice(query, "protected", _BOOLEANS,
                        "Invalid value '%s' for 'protected' filter. "
                        "Valid values are 'true' or 'false'.")
    nothing = (visibility in ("shared", "community") or "tag" in query
               or os_hidden == "true" or protected == "true")
    ids = None
    if "id" in query:
        parsed = [parse_uuid(v) for v in operands(query["id"])]
        ids = [u for u in parsed if u is not None]
    statuses = None
    if "status" in query:
        statuses = [s for v in operands(query["status"]) for s in STATUS_FILTERS.get(v, ())]
    if "container_format" in query and CONTAINER_FORMAT not in operands(
            query["container_format"]):
        nothing = True
    properties = {k: v for k, v in query.items() if k not in _KNOWN}
    return Filters(
        ids=ids, names=operands(query["name"]) if "name" in query else None,
        statuses=statuses, visibility=None if visibility in (None, "all") else visibility,
        disk_formats=operands(query["disk_format"]) if "disk_format" in query else None,
        owner=query.get("owner"), size_min=_size(query, "size_min"),
        size_max=_size(query, "size_max"), properties=properties, nothing=nothing)


def parse_query(query: MultiMapping[str]) -> ListQuery:
    """The whole list request; 400 (BadRequest) with Glance's words for bad input."""
    limit = DEFAULT_LIMIT if query.get("limit") is None else parse_limit(query["limit"])
    marker = (query.get("marker") or "").strip() or None
    return ListQuery(filters=parse_filters(query), sort=parse_sort(query), limit=limit,
                     marker=marker)


def _sort_value(key: str) -> Callable[[Any], Any]:
    if key == "container_format":
        return lambda row: CONTAINER_FORMAT
    column = _COLUMN[key]
    if key == "id":
        return lambda row: str(row[column])
    return lambda row: row[column]


def sort_rows(rows: Sequence[Any], sort: list[tuple[str, str]]) -> list[Any]:
    """``rows`` in the order ``sort`` asks (stable sorts, last key first)."""
    ordered = list(rows)
    for key, direction in reversed(sort):
        ordered.sort(key=_sort_value(key), reverse=direction == "desc")
    return ordered


def page(rows: Sequence[Any], sort: list[tuple[str, str]], limit: int,
         marker_row: Any | None = None) -> list[Any]:
    """One page: the rows after ``marker_row`` (which need not be among ``rows``:
    an image the filters leave out still marks a place in the order)."""
    if marker_row is None:
        return sort_rows(rows, sort)[:limit]
    others = [r for r in rows if r["id"] != marker_row["id"]]
    ordered = sort_rows([*others, marker_row], sort)
    at = next(i for i, r in enumerate(ordered) if r["id"] == marker_row["id"])
    return ordered[at + 1:at + 1 + limit]


def links(query: MultiMapping[str], items: list[dict[str, Any]], limit: int) -> dict[str, str]:
    """``first``, ``schema`` and, after a full page, ``next``, as Glance writes them
    (relative, the request's query repeated with the page's last id as marker).
    Repeated parameters (``sort_key``, ``tag``) stay repeated, which Glance's
    own links lose."""
    params = [(k, v) for k, v in query.items() if k != "marker"]
    body = {"first": "/v2/images" + (f"?{urlencode(params)}" if params else ""),
            "schema": "/v2/schemas/images"}
    if items and len(items) == limit:
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", items[-1]["id"])])
    return body
