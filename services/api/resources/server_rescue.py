"""Rescue and unrescue (os-rescue, section 4.4.14).

``{"rescue": {"adminPass": "..."}}`` / ``<rescue adminPass="..."/>`` (the password
is optional: ``{"rescue": null}``, ``{"rescue": {}}`` and ``<rescue/>`` get one
generated) moves an ACTIVE or SHUTOFF server (Nova's ``check_instance_state``
for rescue) into task ``rescuing`` and casts the rescue to its host, which boots
the server's own image as the rescue system with that password and the server's
disk attached: the status stays ACTIVE (or SHUTOFF) while the task runs (Nova's
status map has no entry for ``rescuing``), then RESCUE. The answer is 200 with
``{"adminPass": "..."}``, in XML ``<adminPass>...</adminPass>`` (written in the
compute namespace like every other body here; the spec's example shows none).

``{"unrescue": null}`` / ``<unrescue/>`` is allowed from RESCUE only (task
``unrescuing``), and the server ends ACTIVE. The spec gives 200 as its response
code ("Normal Response Code(s): 200"), where Nova answered 202; we follow the
spec, 200 with an empty body (202 under the ``nova`` profile, ``status_codes``).
Clients (novaclient, openstacksdk) accept either.

Any other state, or a task in flight, is 409 conflictingRequest, and a server
whose host is down 503 (``server_tasks.cast_action``).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.api.keys import POOL
from services.api.queries import images as image_q
from services.api.representation import View
from services.api.resources import server_body as body
from services.api.resources.common import principal
from services.api.resources.server_create import admin_password as generate_password
from services.api.resources.server_tasks import cast_action
from services.api.status_codes import Op, status_for
from shared.contracts.common import ImageSpec
from shared.contracts.compute import RescueServer, UnrescueServer
from shared.db import volumes as volume_db
from shared.errors import BadRequest
from shared.states import RESCUE, UNRESCUE


def rescue_password(value: Any) -> str | None:
    """The adminPass the rescue body asks for, None to have one generated; 400 for
    a body that is neither null nor an object, or a password that is not a string
    of 1 to 255 characters (``server_body.admin_pass``)."""
    if value is None or value == "":  # <rescue/>, or an element with only blanks
        return None
    if not isinstance(value, dict):
        raise BadRequest("The rescue body must be null or an object.")
    return body.admin_pass(value.get("adminPass"))


async def _rescue_image(request: web.Request, row: asyncpg.Record) -> ImageSpec | None:
    """The server's own image, as Nova rescues with it; None (the driver's default
    rescue image) if it is gone or no longer visible to the project. A server that
    boots from a volume is rescued with the image its volume was made from (a real
    hypervisor needs one to boot beside the volume); 400 if it was made from none."""
    async with request.app[POOL].acquire() as conn:
        image_id = row["image_id"]
        if image_id is None:
            boot = [v for v in await volume_db.of_server(conn, row["id"]) if v["boot"]]
            image_id = boot[0]["image_id"] if boot else None
            if image_id is None:
                raise BadRequest(f"Cannot 'rescue' instance {row['id']}: it boots from a "
                                 "volume that was not made from an image, and there is no "
                                 "image to rescue it with.")
        image = await image_q.get_visible(conn, principal(request).project_id, image_id)
    if image is None:
        return None
    return image_q.image_spec(image)


async def rescue(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    password = rescue_password(value) or generate_password()
    msg = RescueServer(server_id=row["id"], admin_pass=password,
                       rescue_image=await _rescue_image(request, row))
    await cast_action(request, row, RESCUE, msg)
    return View({"adminPass": password}, status=200)


async def unrescue(request: web.Request, row: asyncpg.Record, value: Any) -> View:
    await cast_action(request, row, UNRESCUE, UnrescueServer(server_id=row["id"]))
    return View(None, status=status_for(request, Op.UNRESCUE))
