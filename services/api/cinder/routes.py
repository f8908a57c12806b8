"""The block-storage endpoint's routes (a Cinder v3 subset)."""

from __future__ import annotations

from aiohttp import web

from services.api.cinder import metadata, project, snapshots, versions, volumes


def setup(router: web.UrlDispatcher) -> None:
    for path in ("/", "/v3", "/v3/"):
        router.add_get(path, versions.list_versions)
    volumes.setup(router)
    metadata.setup(router)
    snapshots.setup(router)
    project.setup(router)
