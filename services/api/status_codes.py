"""The success code of the operations where the spec and Nova disagree.

The spec documents a few success codes that no 2014 Nova ever sent (Nova's v2
API, ``nova/api/openstack/compute/contrib/*.py`` at 2014.2: a handler that
returns a dict answers 200, one that returns ``webob.Response(status_int=202)``
202). Strict clients break on the spec's codes: gophercloud's
``keypairs.Create`` (under Terraform's OpenStack provider) accepts only 200 and
201, so the spec's 202 leaves a Terraform user without a keypair. The
``status_codes`` setting (``NIMBUS_API_STATUS_CODES``) picks whose codes these
operations answer: ``spec`` (the default) or ``nova``. Every other operation
answers the same code under both, because the spec and Nova agree on it; the
bodies and headers are the same under both.

Every operation of the spec was compared with Nova 2014.2; these are all the
disagreements. One more is not a profile choice: the spec's "List Server
Action" (``GET .../os-instance-actions/{id}``, 4.4.20.2) reads 202 for a GET,
which contradicts its own list call and which no Nova sent; it answers 200
under both profiles (``resources.instance_actions``).

Handlers never test the profile: they ask :func:`status_for` for the code of their
:class:`Op`, so this table is the one place the rule lives.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from aiohttp import web

from services.api.keys import SETTINGS


class Op(enum.StrEnum):
    """An operation whose success code depends on the profile."""

    CREATE_KEYPAIR = "POST /os-keypairs"
    CREATE_SECURITY_GROUP = "POST /os-security-groups"
    CREATE_SECURITY_GROUP_RULE = "POST /os-security-group-rules"
    CREATE_VOLUME = "POST /os-volumes"
    CREATE_SNAPSHOT = "POST /os-snapshots"
    ATTACH_VOLUME = "POST /servers/{server_id}/os-volume_attachments"
    UNRESCUE = "POST /servers/{server_id}/action unrescue"


class Codes(NamedTuple):
    spec: int
    """The spec's "Normal Response Code(s)"."""
    nova: int
    """What Nova's v2 API (2014.2) answered."""


CODES: Mapping[Op, Codes] = MappingProxyType({
    Op.CREATE_KEYPAIR: Codes(spec=202, nova=200),           # 4.4.9.2
    Op.CREATE_SECURITY_GROUP: Codes(spec=202, nova=200),    # 4.4.11.6
    Op.CREATE_SECURITY_GROUP_RULE: Codes(spec=202, nova=200),  # 4.4.11.9
    Op.CREATE_VOLUME: Codes(spec=202, nova=200),            # 4.4.13.3
    Op.CREATE_SNAPSHOT: Codes(spec=202, nova=200),          # 4.4.13.6
    Op.ATTACH_VOLUME: Codes(spec=202, nova=200),            # 4.4.13.11
    Op.UNRESCUE: Codes(spec=200, nova=202),                 # 4.4.14.2
})


def code(op: Op, profile: str) -> int:
    """The success code of ``op`` under ``profile`` (``spec`` or ``nova``)."""
    codes = CODES[op]
    return codes.nova if profile == "nova" else codes.spec


def status_for(request: web.Request, op: Op) -> int:
    """The success code of ``op`` under the profile this API runs with."""
    return code(op, request.app[SETTINGS].api.status_codes)
