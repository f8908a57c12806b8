"""Links of section 3.5: ``self`` under /v2, ``bookmark`` without the version."""

from __future__ import annotations

from datetime import UTC, datetime


def resource_links(base: str, project_id: str, collection: str, rid: object) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/v2/{project_id}/{collection}/{rid}"},
        {"rel": "bookmark", "href": f"{base}/{project_id}/{collection}/{rid}"},
    ]


def bookmark(base: str, project_id: str, collection: str, rid: object) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{base}/{project_id}/{collection}/{rid}"}]


def isotime(ts: datetime | None) -> str | None:
    """Timestamps as the spec writes them: 2012-10-25T22:37:13Z (UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is UTC and ts.year >= 1000:
        # What the database gives: the same text, without strftime (a tenth of
        # the CPU of a server's detail view went there).
        return ts.isoformat(timespec="seconds")[:19] + "Z"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def microtime(ts: datetime | None) -> str | None:
    """Timestamps with microseconds and no zone (UTC): 2013-05-20T13:21:37.000000.

    Unlike the rest of the API (``...Z``), Nova rendered instance actions' and
    volumes' times as Python's ``str()`` of a naive datetime; the spec's examples
    of both keep that.
    """
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
