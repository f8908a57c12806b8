"""Settings of the Keystone-compatible identity service (section ``[identity]``)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class IdentitySettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    """Address the identity site listens on; ``0.0.0.0`` exposes it on every
    interface, which a multi-host deployment needs."""

    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 5000
    """TCP port of the identity site (Keystone's customary 5000); 0 picks a free one."""

    public_url: str = "http://127.0.0.1:5000"
    """Base URL clients reach this service at, without a trailing slash. It goes
    into version documents, the catalog's identity entry and ``WWW-Authenticate``;
    change it together with ``host``/``port`` or any proxy in front."""

    compute_public_url: str = "http://127.0.0.1:8774"
    """Base URL of the compute API. The catalog's compute endpoints (public,
    internal and admin alike) are ``{compute_public_url}/v2/{project_id}``."""

    region: str = "region-a"
    """Region name of every catalog endpoint; clients that pass a region name
    must use this one."""

    token_ttl_s: Annotated[int, msgspec.Meta(gt=0)] = 86400
    """Seconds a token stays valid after it is issued (24 h by default). Shorter
    limits the damage of a leaked token but makes clients log in more often;
    a rescoped token keeps the expiry of the token it came from."""

    token_purge_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    """Seconds between deletions of expired token rows; 0 turns purging off.
    Expired tokens are refused either way; this only bounds the table's size."""

    demo_password: str = "demo"
    """Password of the bootstrap user ``demo`` (member of project ``demo``).
    Changing it and bootstrapping again updates the stored hash."""

    alt_password: str = "alt"
    """Password of the bootstrap user ``alt`` (member of project ``alt``)."""

    admin_password: str = "admin"
    """Password of the bootstrap user ``admin`` (admin and member of project ``admin``).
    Set it to something else anywhere reachable from outside."""
