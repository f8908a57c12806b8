"""The service catalog, in its v2.0 and v3 shapes.

It names exactly two services, compute and identity, so that clients use the
compute API's own floating IP, security group, image and volume resources.
Nothing is stored: the catalog follows from the settings, with ids derived
from them so that they are the same in every token.
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


def catalog_v3(settings: IdentitySettings, project_id: str) -> list[dict[str, Any]]:
    """The ``catalog`` of a v3 token scoped to ``project_id``."""
    services = [
        ("compute", "Compute", compute_url(settings, project_id),
         _stable_id("compute", settings.compute_public_url)),
        ("identity", "keystone", f"{_identity_base(settings)}/v3",
         _stable_id("identity", settings.public_url)),
    ]
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
        for service_type, name, url, service_id in services
    ]


def catalog_v2(settings: IdentitySettings, project_id: str) -> list[dict[str, Any]]:
    """The ``serviceCatalog`` of a v2.0 token scoped to ``project_id``."""
    services = [
        ("compute", "Compute", compute_url(settings, project_id),
         _stable_id("compute", settings.compute_public_url)),
        ("identity", "keystone", f"{_identity_base(settings)}/v2.0",
         _stable_id("identity", settings.public_url)),
    ]
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
        for service_type, name, url, service_id in services
    ]
