"""Helpers of the list, metadata and image tests: PUT, walking next links, fake rows."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import ATOM, NS, Api, Response


async def put(api: Api, rest: str, **kw: Any) -> Response:
    return await api.cloud.request("PUT", api.path(rest), token=api.token, **kw)


def next_href(r: Response, key: str) -> str | None:
    """The ``next`` link of a JSON or XML list response, if any."""
    if r.xml is not None:
        links = [link.get("href") for link in r.xml.findall(f"{{{ATOM}}}link")
                 if link.get("rel") == "next"]
    else:
        links = [link["href"] for link in r.json.get(f"{key}_links", []) if link["rel"] == "next"]
    assert len(links) <= 1, links
    return links[0] if links else None


def ids_of(r: Response, key: str) -> list[str]:
    if r.xml is not None:
        return [e.get("id") for e in r.xml.findall(f"{{{NS}}}{key[:-1]}")]
    return [str(item["id"]) for item in r.json[key]]


async def walk(api: Api, first: str, key: str, *, xml: bool = False,
               max_pages: int = 500) -> tuple[list[str], list[int]]:
    """Follow next links from ``first``; every id seen, in order, and each page's size."""
    r = await api.get(first, xml=xml)
    ids: list[str] = []
    sizes: list[int] = []
    for _ in range(max_pages):
        assert r.status == 200, r.raw
        page = ids_of(r, key)
        ids += page
        sizes.append(len(page))
        href = next_href(r, key)
        if href is None:
            return ids, sizes
        assert href.startswith(api.cloud.api_url + api.path("/")), href
        r = await api.cloud.request("GET", href[len(api.cloud.api_url):], token=api.token,
                                    xml=xml)
    raise AssertionError(f"more than {max_pages} pages from {first}")


def fault_name(r: Response) -> str:
    if r.xml is not None:
        return r.xml.tag.rpartition("}")[2]
    (name,) = r.json
    return name
