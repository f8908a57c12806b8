"""The service catalog, in its v2.0 and v3 shapes.

It names compute, identity, and the image, network and block-storage endpoints
today's clients look for beside compute (``block-storage`` and ``volumev3`` are
one Cinder v3 subset under two types, as Cinder itself registers). Nimbus
serves all of them from the API process (``services.api.glance``,
``services.api.neutron``, ``services.api.cinder``) over the same resources as
the compute API. Nothing is stored: the catalog follows from the settings, with
ids derived from them so that they are the same in every token.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.api.identity.settings import IdentitySettings

_NAMESPACE = uuid.UUID("6f1c1a52-5b1f-4a43-9c1e-6e696d627573")
_INTERFACES = ("public", "internal", "admin")


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex


def compute_url(settings: IdentitySettings, project_id: str) -> str:
    return f"{settings.compute_public_url.rstrip('/')}/v2/{project_id}"


def _identity_base(settings: IdentitySettings) -> str:
    return settings.public_url.rstrip("/")


def _services(settings: IdentitySettings, project_id: str,
              identity_version: str) -> list[tuple[str, str, str, str]]:
    """(type, name, url, service id) of every catalog entry."""
    block_storage = f"{settings.block_storage_public_url.rstrip('/')}/v3/{project_id}"
    return [
        ("compute", "Compute", compute_url(settings, project_id),
         _stable_id("compute", settings.compute_public_url)),
        ("identity", "keystone", f"{_identity_base(settings)}/{identity_version}",
         _stable_id("identity", settings.public_url)),
        ("image", "Image", settings.image_public_url.rstrip("/"),
         _stable_id("image", settings.image_public_url)),
        ("network", "Network", settings.network_public_url.rstrip("/"),
         _stable_id("network", settings.network_public_url)),
        ("block-storage", "Block Storage", block_storage,
         _stable_id("block-storage", settings.block_storage_public_url)),
        ("volumev3", "Block Storage", block_storage,
         _stable_id("volumev3", settings.block_storage_public_url)),
    ]


def catalog_v3(settings: IdentitySettings, project_id: str) -> list[dict[str, Any]]:
    """The ``catalog`` of a v3 token scoped to ``project_id``."""
    return [
        {
            "id": service_id,
            "type": service_type,
            "name": name,
            "endpoints": [
                {"id": _stable_id(service_id, settings.region, interface),
                 "interface": interface,
                 "region": settings.region,
                 "region_id": settings.region,
                 "url": url}
                for interface in _INTERFACES
            ],
        }
        for service_type, name, url, service_id in _services(settings, project_id, "v3")
    ]


def catalog_v2(settings: IdentitySettings, project_id: str) -> list[dict[str, Any]]:
    """The ``serviceCatalog`` of a v2.0 token scoped to ``project_id``."""
    return [
        {
            "type": service_type,
            "name": name,
            "endpoints": [
                {"id": _stable_id(service_id, settings.region),
                 "region": settings.region,
                 "publicURL": url,
                 "internalURL": url,
                 "adminURL": url}
            ],
            "endpoints_links": [],
        }
        for service_type, name, url, service_id in _services(settings, project_id, "v2.0")
    ]
