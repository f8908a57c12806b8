"""SQL for the ``networks`` table (and the first subnet and its ``fixed_ips`` rows,
made with a network: ``services.network.growth``).

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
from services.network import growth
from services.network.subnets import DEFAULT_PREFIXLEN, MAX_PREFIXLEN, MIN_PREFIXLEN, Subnet, of_cidr

log = structlog.get_logger(__name__)

_COLUMNS = "id, project_id, name, cidr::text AS cidr, host(gateway) AS gateway, is_default"

_GET_DEFAULT = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 AND is_default"

_GET_MANY = f"SELECT {_COLUMNS} FROM networks WHERE id = ANY($1::uuid[])"

# No conflict target: whichever unique index is hit (the project's one default,
# the cidr, the (project, name) pair), nothing is inserted and the caller looks
# again. A concurrent insert of the same project's default makes this wait for
# that transaction and then do nothing, so two first uses end with one network.
_INSERT = f"""
INSERT INTO networks (id, project_id, name, cidr, gateway, is_default)
VALUES ($1, $2, $3, $4, $5, true)
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}"""

# A further network (the management command's): same conflicts as above, but
# not the project's default.
_INSERT_OTHER = f"""
INSERT INTO networks (id, project_id, name, cidr, gateway, is_default)
VALUES ($1, $2, $3, $4, $5, false)
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}"""

_NAME_TAKEN = "SELECT true FROM networks WHERE project_id = $1 AND name = $2"

_OVERLAPPING = f"""
SELECT {_COLUMNS} FROM networks
 WHERE id = (SELECT network_id FROM subnets WHERE cidr && $1::cidr LIMIT 1)"""

_OF_PROJECT = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 ORDER BY created_at, id"



class _Taken(Exception):
    """The new network's subnet overlaps another network's subnet (not its first)."""


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
                         supernet: ipaddress.IPv4Network, name: str,
                         prefixlen: int = DEFAULT_PREFIXLEN) -> Network:
    """The project's default network, made with its first subnet (the next block of
    ``prefixlen`` in ``supernet``) and all its fixed IPs if it has none.

    Safe to call concurrently for one project: every caller returns the same
    network. A lost race leaves a gap in the subnet sequence, never a second
    network.
    """
    for _ in range(growth.MAX_ATTEMPTS):
        if (found := await get_default(conn, project_id)) is not None:
            return found
        subnet = await growth.next_block(conn, supernet=supernet, prefixlen=prefixlen)
        row = await _insert(conn, _INSERT, project_id, name, subnet)
        if row is None:
            await growth.skip_past(conn, subnet.cidr, supernet=supernet, prefixlen=prefixlen)
            continue
        log.info("network.default_created", project_id=project_id, network_id=str(row["id"]),
                 cidr=str(subnet.cidr))
        return _network(row)
    raise Conflict(f"Could not create the default network {name!r} of project {project_id}: "
                   "its name or subnet is taken by another network.")


async def _insert(conn: asyncpg.Connection, sql: str, project_id: str, name: str,
                  subnet: Subnet) -> asyncpg.Record | None:
    """Insert a network (``sql``) with ``subnet`` as its first subnet; None when a
    unique or overlap constraint refuses either (nothing is left behind: a
    savepoint, or a transaction of its own outside one)."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(sql, uuid.uuid4(), project_id, name, subnet.cidr,
                                      subnet.gateway)
            if row is not None and not await growth.add(conn, row["id"], 0, subnet):
                raise _Taken
            return row
    except _Taken:
        return None


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


def parse_cidr(text: str) -> ipaddress.IPv4Network:
    """A CIDR a network may have; ValueError saying why not."""
    try:
        cidr = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 CIDR ({exc})") from None
    if not MIN_PREFIXLEN <= cidr.prefixlen <= MAX_PREFIXLEN:
        raise ValueError(f"a network's prefix length must be /{MIN_PREFIXLEN} to "
                         f"/{MAX_PREFIXLEN}, not /{cidr.prefixlen}")
    return cidr


async def owned_ids(conn: asyncpg.Connection, project_id: str,
                    network_ids: list[UUID]) -> set[UUID]:
    """Those of ``network_ids`` that are the project's networks."""
    rows = await conn.fetch(_GET_MANY, list(network_ids))
    return {r["id"] for r in rows if r["project_id"] == project_id}


async def of_project(conn: asyncpg.Connection, project_id: str) -> list[Network]:
    """The project's networks, oldest first."""
    return [_network(r) for r in await conn.fetch(_OF_PROJECT, project_id)]


async def create(conn: asyncpg.Connection, project_id: str, name: str, *,
                 supernet: ipaddress.IPv4Network, default_name: str,
                 cidr: ipaddress.IPv4Network | None = None,
                 prefixlen: int = DEFAULT_PREFIXLEN) -> Network:
    """Make a further network of the project, with all its fixed IPs.

    The project's default network is made first if it has none, so that a
    project with a further network always has several (and create server then
    needs ``networks``, section 2.3.1). Without ``cidr`` the network takes the
    next block of ``prefixlen`` of ``supernet`` like a default network does. It
    keeps that one subnet: only default networks grow.

    Raises Conflict when the project has a network of that name or ``cidr``
    overlaps another network. Run it in a transaction of its own, after the
    default network's (see :func:`ensure_default`).
    """
    name = name.strip()
    if not name or len(name) > 255:
        raise BadRequest("A network name must be 1 to 255 characters, not all blank.")
    async with conn.transaction():
        await ensure_default(conn, project_id, supernet=supernet, name=default_name,
                             prefixlen=prefixlen)
    for _ in range(growth.MAX_ATTEMPTS if cidr is None else 1):
        if await conn.fetchval(_NAME_TAKEN, project_id, name):
            raise Conflict(f"Project {project_id} already has a network named {name!r}.")
        subnet = (of_cidr(cidr) if cidr is not None
                  else await growth.next_block(conn, supernet=supernet, prefixlen=prefixlen))
        row = await _insert(conn, _INSERT_OTHER, project_id, name, subnet)
        if row is not None:
            log.info("network.created", project_id=project_id, network_id=str(row["id"]),
                     name=name, cidr=str(subnet.cidr))
            return _network(row)
        if cidr is not None:
            other = await conn.fetchrow(_OVERLAPPING, cidr)
            if other is not None:
                raise Conflict(f"CIDR {cidr} overlaps network {other['name']} ({other['cidr']}) "
                               f"of project {other['project_id']}.")
        else:
            await growth.skip_past(conn, subnet.cidr, supernet=supernet, prefixlen=prefixlen)
    if await conn.fetchval(_NAME_TAKEN, project_id, name):
        raise Conflict(f"Project {project_id} already has a network named {name!r}.")
    raise Conflict(f"Could not create network {name!r} of project {project_id}: "
                   "no free subnet found.")
