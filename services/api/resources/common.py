"""What every resource handler needs: the caller, the base URL, id parsing."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from services.api.identity import Principal
from services.api.keys import SETTINGS


def principal(request: web.Request) -> Principal:
    return request["principal"]


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].api.public_url
    return configured.rstrip("/") if configured else str(request.url.origin())


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def ref_id(ref: object) -> str:
    """The id in an ``imageRef``/``flavorRef``: a bare id or a link ending with it."""
    text = str(ref).strip()
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text
