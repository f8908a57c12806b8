"""Request bodies of the token APIs, as msgspec Structs decoded straight from JSON.

Unknown keys are ignored, as Keystone does; a wrong type or a missing required
key is a 400. Which combinations make sense (a name needs a domain, a method
named in ``methods`` needs its section) is checked in ``auth``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(max_length=4096)]
TokenId = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


# --- v2.0: POST /v2.0/tokens -------------------------------------------------

class V2PasswordCredentials(msgspec.Struct, frozen=True):
    password: Password
    username: Name | None = None
    userId: Ident | None = None  # noqa: N815 (wire name)


class V2TokenRef(msgspec.Struct, frozen=True):
    id: TokenId


class V2Auth(msgspec.Struct, frozen=True):
    passwordCredentials: V2PasswordCredentials | None = None  # noqa: N815
    token: V2TokenRef | None = None
    tenantName: Name | None = None  # noqa: N815
    tenantId: Ident | None = None  # noqa: N815


class V2AuthRequest(msgspec.Struct, frozen=True):
    auth: V2Auth


# --- v3: POST /v3/auth/tokens ------------------------------------------------

class DomainRef(msgspec.Struct, frozen=True):
    id: Ident | None = None
    name: Name | None = None


class UserRef(msgspec.Struct, frozen=True):
    password: Password
    id: Ident | None = None
    name: Name | None = None
    domain: DomainRef | None = None


class PasswordMethod(msgspec.Struct, frozen=True):
    user: UserRef


class TokenMethod(msgspec.Struct, frozen=True):
    id: TokenId


class Identity(msgspec.Struct, frozen=True):
    methods: Annotated[list[str], msgspec.Meta(min_length=1, max_length=8)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(msgspec.Struct, frozen=True):
    id: Ident | None = None
    name: Name | None = None
    domain: DomainRef | None = None


class Scope(msgspec.Struct, frozen=True):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    system: dict[str, bool] | None = None
    # OS-TRUST:trust and the like are not supported; they decode as unknown keys
    # and the request is then unscoped, so reject them explicitly in auth.
    trust: dict[str, str] | None = msgspec.field(default=None, name="OS-TRUST:trust")


class V3Auth(msgspec.Struct, frozen=True):
    identity: Identity
    scope: Scope | Literal["unscoped"] | None = None


class V3AuthRequest(msgspec.Struct, frozen=True):
    auth: V3Auth


V2_DECODER = msgspec.json.Decoder(V2AuthRequest)
V3_DECODER = msgspec.json.Decoder(V3AuthRequest)
