"""Keystone-compatible identity (v2.0 and v3 tokens) for Nimbus.

It runs inside the API process on its own site (port 5000 by default); the
compute API authenticates each request with :func:`validate_token`.

Public surface:

- :class:`IdentitySettings`: the ``[identity]`` settings section.
- :func:`create_identity_app`: the aiohttp app, given a pool the caller owns.
- :func:`validate_token` and :class:`Principal`: who an ``X-Auth-Token`` speaks for.
- :func:`bootstrap_identity`: the Default domain, roles and the demo/alt/admin accounts.
- :func:`create_project`, :func:`create_user`: management helpers for the CLI.
- :func:`purge_expired_tokens`: delete expired token rows (the app also does it periodically).
"""

from services.api.identity.accounts import (DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME,
                                            assign_role, create_project, create_user,
                                            find_project_by_id, find_project_by_name,
                                            find_user_by_id, find_user_by_name)
from services.api.identity.app import create_identity_app
from services.api.identity.bootstrap import bootstrap_identity
from services.api.identity.errors import (DuplicateName, IdentityError, ProjectNotFound,
                                          RoleNotFound)
from services.api.identity.settings import IdentitySettings
from services.api.identity.tokens import Principal, purge_expired_tokens, validate_token

__all__ = [
    "DEFAULT_DOMAIN_ID",
    "DEFAULT_DOMAIN_NAME",
    "DuplicateName",
    "IdentityError",
    "IdentitySettings",
    "Principal",
    "ProjectNotFound",
    "RoleNotFound",
    "assign_role",
    "bootstrap_identity",
    "create_identity_app",
    "create_project",
    "create_user",
    "find_project_by_id",
    "find_project_by_name",
    "find_user_by_id",
    "find_user_by_name",
    "purge_expired_tokens",
    "validate_token",
]
