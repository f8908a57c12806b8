"""Response bodies of the identity API, as plain dicts in Keystone's shapes.

Timestamps follow Keystone to the character, because Tempest parses them with
fixed formats: v3 ``expires_at``/``issued_at`` as ``2024-01-02T03:04:05.678901Z``,
v2.0 ``expires`` as ``2024-01-02T03:04:05Z``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.api.identity.accounts import Project, Role
from services.api.identity.catalog import catalog_v2, catalog_v3
from services.api.identity.settings import IdentitySettings
from services.api.identity.tokens import TokenRecord

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"
V2_ID = "v2.0"
V2_UPDATED = "2016-08-04T00:00:00Z"


def iso_v3(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_v2(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base(settings: IdentitySettings) -> str:
    return settings.public_url.rstrip("/")


# --- version discovery -------------------------------------------------------

def version_v3(settings: IdentitySettings) -> dict[str, Any]:
    return {
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": f"{_base(settings)}/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    }


def version_v2(settings: IdentitySettings) -> dict[str, Any]:
    return {
        "id": V2_ID,
        "status": "deprecated",
        "updated": V2_UPDATED,
        "links": [{"rel": "self", "href": f"{_base(settings)}/v2.0/"},
                  {"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v2.0+json"}],
    }


def versions(settings: IdentitySettings) -> dict[str, Any]:
    return {"versions": {"values": [version_v3(settings), version_v2(settings)]}}


# --- tokens ------------------------------------------------------------------

def token_v3(record: TokenRecord, roles: Iterable[Role], settings: IdentitySettings, *,
             include_catalog: bool = True) -> dict[str, Any]:
    """The body of ``POST``/``GET /v3/auth/tokens``. An unscoped token has no
    ``project``, ``roles`` or ``catalog`` key at all (Tempest checks)."""
    token: dict[str, Any] = {
        "methods": list(record.methods),
        "user": {
            "id": record.user_id,
            "name": record.user_name,
            "domain": {"id": record.user_domain_id, "name": record.user_domain_name},
            "password_expires_at": None,
        },
        "audit_ids": record.audit_ids,
        "expires_at": iso_v3(record.expires_at),
        "issued_at": iso_v3(record.issued_at),
    }
    if record.project_id is not None:
        token["project"] = {
            "id": record.project_id,
            "name": record.project_name,
            "domain": {"id": record.project_domain_id, "name": record.project_domain_name},
        }
        token["is_domain"] = False
        token["roles"] = [{"id": r.id, "name": r.name} for r in roles]
        if include_catalog:
            token["catalog"] = catalog_v3(settings, record.project_id)
    return {"token": token}


def access_v2(token_id: str, record: TokenRecord, roles: Iterable[Role],
              settings: IdentitySettings) -> dict[str, Any]:
    """The body of ``POST /v2.0/tokens``: an unscoped token has no ``tenant``
    and an empty catalog."""
    roles = list(roles)
    token: dict[str, Any] = {
        "id": token_id,
        "issued_at": iso_v3(record.issued_at),
        "expires": iso_v2(record.expires_at),
        "audit_ids": record.audit_ids,
    }
    if record.project_id is not None:
        token["tenant"] = {"id": record.project_id, "name": record.project_name,
                           "enabled": True, "description": None}
    return {
        "access": {
            "token": token,
            "user": {
                "id": record.user_id,
                "name": record.user_name,
                "username": record.user_name,
                "roles": [{"name": r.name} for r in roles],
                "roles_links": [],
            },
            "serviceCatalog": ([] if record.project_id is None
                               else catalog_v2(settings, record.project_id)),
            "metadata": {
                "is_admin": 0,
                "roles": [r.id for r in roles],
            },
        }
    }


# --- projects ----------------------------------------------------------------

def project_v3(project: Project, settings: IdentitySettings) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": False,
        "parent_id": project.domain_id,
        "tags": [],
        "options": {},
        "links": {"self": f"{_base(settings)}/v3/projects/{project.id}"},
    }


def projects_v3(projects: Iterable[Project], settings: IdentitySettings,
                links: dict[str, str | None]) -> dict[str, Any]:
    return {"projects": [project_v3(p, settings) for p in projects], "links": links}


def tenants_v2(projects: Iterable[Project]) -> dict[str, Any]:
    return {
        "tenants": [{"id": p.id, "name": p.name, "description": p.description,
                     "enabled": p.enabled} for p in projects],
        "tenants_links": [],
    }
