"""SQL for the ``networks`` table (and the ``fixed_ips`` rows made with a network).

Functions take a connection; the caller owns the transaction, which must be
READ COMMITTED (PostgreSQL's default): :func:`ensure_default` looks again after a
lost race and must see the winner's committed row.
"""

from __future__ import annotations

import ipaddress
import uuid
from uuid import UUID

import asyncpg
import msgspec
import structlog

from shared.errors import BadRequest, Conflict
from services.network.subnets import carve

log = structlog.get_logger(__name__)

# Each attempt of ensure_default burns one subnet index; more than a couple are
# needed only when a /24 or the name is already taken by some other network.
_MAX_ATTEMPTS = 8

_COLUMNS = "id, project_id, name, cidr::text AS cidr, host(gateway) AS gateway, is_default"

_GET_DEFAULT = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 AND is_default"

_GET_MANY = f"SELECT {_COLUMNS} FROM networks WHERE id = ANY($1::uuid[])"

_NEXT_INDEX = "SELECT nextval('network_subnet_seq') - 1"

# No conflict target: whichever unique index is hit (the project's one default,
# the cidr, the (project, name) pair), nothing is inserted and the caller looks
# again. A concurrent insert of the same project's default makes this wait for
# that transaction and then do nothing, so two first uses end with one network.
_INSERT = f"""
INSERT INTO networks (id, project_id, name, cidr, gateway, is_default)
VALUES ($1, $2, $3, $4, $5, true)
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}"""

_INSERT_FIXED_IPS = """
INSERT INTO fixed_ips (network_id, address)
SELECT $1, $2::inet + g FROM generate_series(0, $3::integer - 1) AS g"""


class Network(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    project_id: str
    name: str
    cidr: str
    gateway: str
    is_default: bool


def _network(row: asyncpg.Record) -> Network:
    return Network(**dict(row))


async def get_default(conn: asyncpg.Connection, project_id: str) -> Network | None:
    row = await conn.fetchrow(_GET_DEFAULT, project_id)
    return _network(row) if row else None


async def ensure_default(conn: asyncpg.Connection, project_id: str, *,
                         supernet: ipaddress.IPv4Network, name: str) -> Network:
    """The project's default network, made with all its fixed IPs if it has none.

    Safe to call concurrently for one project: every caller returns the same
    network. The new network takes the next /24 of ``supernet``; a lost race
    leaves a gap in the subnet sequence, never a second network.
    """
    for _ in range(_MAX_ATTEMPTS):
        if (found := await get_default(conn, project_id)) is not None:
            return found
        index = await conn.fetchval(_NEXT_INDEX)
        subnet = carve(supernet, index)
        row = await conn.fetchrow(_INSERT, uuid.uuid4(), project_id, name, subnet.cidr, subnet.gateway)
        if row is None:
            continue
        await conn.execute(_INSERT_FIXED_IPS, row["id"], subnet.first_host, subnet.host_count)
        log.info("network.default_created", project_id=project_id, network_id=str(row["id"]),
                 cidr=str(subnet.cidr), subnet_index=index)
        return _network(row)
    raise Conflict(f"Could not create the default network {name!r} of project {project_id}: "
                   "its name or subnet is taken by another network.")


async def get_owned(conn: asyncpg.Connection, project_id: str,
                    network_ids: tuple[UUID, ...] | list[UUID]) -> list[Network]:
    """The networks ``network_ids`` in that order; BadRequest naming the first one
    that does not exist or belongs to another project (which this project must not
    be able to tell apart)."""
    rows = {r["id"]: _network(r) for r in await conn.fetch(_GET_MANY, list(network_ids))}
    found = []
    for nid in network_ids:
        net = rows.get(nid)
        if net is None or net.project_id != project_id:
            raise BadRequest(f"Network {nid} could not be found.")
        found.append(net)
    return found
