"""Keypairs: list, create (generate or import), get, delete (section 4.4.9).

Keypairs belong to a user in a project: Nova kept them per user, across
projects; here a token sees, uses (``key_name`` on create server) and counts
only the keypairs its user made in the project it is scoped to. Another
project's (or another user's) keypair is 404, as if it did not exist.

* Create with ``public_key`` imports it (checked: one OpenSSH public key line,
  ``ssh-rsa``, ``ssh-ed25519`` or ``ecdsa-sha2-*``, whose blob parses; else 400;
  stored and shown as given, surrounding whitespace and all, as Nova did);
  without, it generates an RSA 2048 key and returns the private key in that
  response only: only the public key is stored. Create answers 202 as the spec
  says, with ``user_id`` (200 as Nova under the ``nova`` profile,
  ``status_codes``); get, list 200; delete 202.
* Names, as Nova: 1 to 255 characters of ASCII letters, digits, spaces, ``_``,
  ``-`` and ``.`` (the spec's examples have ``hochmuth.pub``), not all blank.
  A name the user already has in the project is 409 conflictingRequest.
* maxTotalKeypairs counts the user's keypairs in the project, under a lock, so
  concurrent creates never pass it; over it is 413 overLimit with ``Retry-After: 0``
  (``QuotaExceeded``).
* The fingerprint is the MD5 of the key blob, colon-separated (Nova's).
* ``type`` (microversion 2.2) may only be ``ssh``; ``user_id`` (2.10) may only
  name the caller.
* A name ending in ``.json`` or ``.xml`` is read as a format suffix in the
  keypair's URL, as everywhere in this API: ``GET os-keypairs/k.xml`` is the
  keypair ``k`` in XML, and a keypair called ``k.xml`` is ``k.xml.json``.
"""

from __future__ import annotations

import asyncio
import string

from aiohttp import web

from services.api import keypair_keys, quotas
from services.api.keys import POOL
from services.api.queries import keypairs as q
from services.api.representation import View, parse_body, represented, route
from services.api.resources.common import principal
from services.api.status_codes import Op, status_for
from services.api.views import keypairs as views
from shared.errors import BadRequest, Conflict, NotFound, QuotaExceeded

MAX_NAME_LENGTH = 255
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_-. ")


class KeypairNotFound(NotFound):
    def __init__(self, name: str, user_id: str) -> None:
        super().__init__(f"Keypair {name} not found for user {user_id}")


def check_name(name: object) -> str:
    """Nova's rule for keypair names (with ``.``); BadRequest otherwise."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH or not name.strip():
        raise BadRequest("Keypair data is invalid: Keypair name must be string and between "
                         f"1 and {MAX_NAME_LENGTH} characters long")
    if not set(name) <= _NAME_CHARS:
        raise BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
    return name


@represented
async def list_keypairs(request: web.Request) -> View:
    who = principal(request)
    async with request.app[POOL].acquire() as conn:
        rows = await q.list_for_owner(conn, who.project_id, who.user_id)
    return View({"keypairs": [{"keypair": views.keypair(r)} for r in rows]})


@represented
async def create_keypair(request: web.Request) -> View:
    who = principal(request)
    body = (await parse_body(request, root="keypair"))["keypair"]
    if not isinstance(body, dict):
        raise BadRequest("The request body must hold a 'keypair' object.")
    name = check_name(body.get("name"))
    key_type = body.get("type")
    if key_type is not None and key_type != "ssh":
        raise BadRequest(f"Keypair type {key_type!r} is not supported; only 'ssh' is.")
    user_id = body.get("user_id")
    if user_id is not None and user_id != who.user_id:
        raise BadRequest("A keypair can only be made for the caller's own user.")
    public_key = body.get("public_key")
    private_key = None
    if public_key is not None:
        if not isinstance(public_key, str):
            raise BadRequest("Keypair data is invalid: public_key must be a string")
        try:
            key_line = keypair_keys.check_public_key(public_key)
        except keypair_keys.InvalidPublicKey as exc:
            raise BadRequest(f"Keypair data is invalid: {exc}") from None
        # Kept as given, trailing newline included, as Nova kept it: clients that
        # compare the key they read back with the file they sent (gophercloud,
        # Terraform's keypair) see no change.
        fingerprint = keypair_keys.fingerprint(key_line)
    else:
        generated = await asyncio.to_thread(keypair_keys.generate)
        public_key, private_key, fingerprint = (generated.public_key, generated.private_key,
                                                generated.fingerprint)

    async with request.app[POOL].acquire() as conn:
        limits = await quotas.absolute_limits(conn, who.project_id)
        allowed = limits["maxTotalKeypairs"]
        async with conn.transaction():
            await q.lock_owner(conn, who.project_id, who.user_id)
            if await q.get(conn, who.project_id, who.user_id, name) is not None:
                raise Conflict(f"Key pair '{name}' already exists.")
            if allowed >= 0 and await q.count(conn, who.project_id, who.user_id) >= allowed:
                raise QuotaExceeded("Quota exceeded, too many key pairs.",
                                    details=f"A user may have at most {allowed} keypairs "
                                            "in a project.")
            row = await q.insert(conn, who.project_id, who.user_id, name,
                                 fingerprint=fingerprint, public_key=public_key)
            if row is None:
                raise Conflict(f"Key pair '{name}' already exists.")
    return View({"keypair": views.created(row, private_key)},
                status=status_for(request, Op.CREATE_KEYPAIR))


@represented
async def show_keypair(request: web.Request) -> View:
    who = principal(request)
    name = request.match_info["keypair_name"]
    async with request.app[POOL].acquire() as conn:
        row = await q.get(conn, who.project_id, who.user_id, name)
    if row is None:
        raise KeypairNotFound(name, who.user_id)
    return View({"keypair": views.keypair(row)})


@represented
async def delete_keypair(request: web.Request) -> View:
    who = principal(request)
    name = request.match_info["keypair_name"]
    async with request.app[POOL].acquire() as conn:
        if not await q.delete(conn, who.project_id, who.user_id, name):
            raise KeypairNotFound(name, who.user_id)
    return View(None, status=202)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/os-keypairs", list_keypairs)
    route(router, "POST", "/v2/{project_id}/os-keypairs", create_keypair)
    route(router, "GET", "/v2/{project_id}/os-keypairs/{keypair_name}", show_keypair)
    route(router, "DELETE", "/v2/{project_id}/os-keypairs/{keypair_name}", delete_keypair)
