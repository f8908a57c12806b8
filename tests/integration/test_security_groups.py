"""Security groups in the network service, over a real RPC round trip on real
PostgreSQL and RabbitMQ: quotas and duplicates under concurrency, a deleted
group taken off its servers, and each server's effective rule set."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.api.queries import servers as server_q
from services.network.app import create_worker
from services.network.settings import NetworkSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec
from shared.contracts.security_groups import (
    AddServerSecurityGroup,
    CreateSecurityGroup,
    CreateSecurityGroupRule,
    DeleteSecurityGroup,
    DeleteSecurityGroupRule,
    EnsureDefaultGroup,
    GetServerRules,
    RemoveServerSecurityGroup,
    SecurityGroupClient,
    SecurityGroupQuotaExceeded,
    UpdateSecurityGroup,
)
from shared.db.pool import connect as db_connect
from shared.errors import BadRequest, NotFound, OverLimit
from shared.rpc import RpcClient, connect

SMALL = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)


@pytest.fixture
async def groups(db_url: str, amqp_url: str) -> AsyncIterator[SecurityGroupClient]:
    """The network service in-process, and a client of its security group queue."""
    settings = Settings(database=DatabaseSettings(url=db_url, pool_min=1, pool_max=20),
                        amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=30),
                        log=LogSettings(), health=HealthSettings(port=0),
                        network=NetworkSettings())
    worker = await create_worker(settings)
    task = asyncio.create_task(worker.run())
    connection = await connect(amqp_url)
    rpc = RpcClient(connection, timeout=30)
    await rpc.start()
    try:
        yield SecurityGroupClient(rpc, request_id=None)
    finally:
        await rpc.close()
        await connection.close()
        worker.stop()
        await asyncio.wait_for(task, 30)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db_connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


def new_project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def add_server(db: asyncpg.Connection, project: str, groups: list[str],
                     addresses: list[str] = ()) -> uuid.UUID:
    """A live server naming ``groups``, with a port for each of ``addresses``."""
    sid = uuid.uuid4()
    await server_q.insert(db, id=sid, project_id=project, user_id="u", name="s", image_id=None,
                          flavor_id=SMALL.id, flavor=SMALL, availability_zone=None, metadata={},
                          security_groups=groups, key_name=None, config_drive=False,
                          reservation_id="r-1", request_id="req-1")
    if addresses:
        nid = await db.fetchval("SELECT id FROM networks WHERE project_id = $1", project)
        if nid is None:
            nid = uuid.uuid4()
            index = await db.fetchval("SELECT count(*) FROM networks")
            await db.execute("INSERT INTO networks (id, project_id, name, cidr, gateway) "
                             "VALUES ($1, $2, 'net', $3::cidr, $4::inet)", nid, project,
                             f"172.16.{index}.0/24", f"172.16.{index}.1")
            await db.execute("INSERT INTO subnets (network_id, ordinal, cidr, gateway) "
                             "VALUES ($1, 0, $2::cidr, $3::inet)", nid,
                             f"172.16.{index}.0/24", f"172.16.{index}.1")
        for address in addresses:
            await db.execute("INSERT INTO ports (id, server_id, network_id, address, mac) "
                             "VALUES ($1, $2, $3, $4::inet, $5::macaddr)", uuid.uuid4(), sid, nid,
                             address, "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3]))
    return sid


async def server_groups(db: asyncpg.Connection, sid: uuid.UUID) -> list[str]:
    return await db.fetchval("SELECT security_groups FROM servers WHERE id = $1", sid)


async def create(groups: SecurityGroupClient, project: str, name: str, max_groups: int = -1):
    return await groups.create_group(CreateSecurityGroup(
        project_id=project, name=name, description=f"{name} servers", max_groups=max_groups))


def rule(project: str, parent: int, port: int, **kw) -> CreateSecurityGroupRule:
    fields = {"ip_protocol": "tcp", "from_port": port, "to_port": port, "cidr": "0.0.0.0/0"} | kw
    return CreateSecurityGroupRule(project_id=project, parent_group_id=parent, **fields)


# --------------------------------------------------------------------------- groups


async def test_create_makes_the_default_group_first_and_counts_it(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web", max_groups=2)
    assert (web.name, web.description, web.project_id, web.rules) == ("web", "web servers",
                                                                       project, ())
    names = [r["name"] for r in await db.fetch(
        "SELECT name FROM security_groups WHERE project_id = $1 ORDER BY id", project)]
    assert names == ["default", "web"]
    with pytest.raises(SecurityGroupQuotaExceeded) as err:
        await create(groups, project, "db", max_groups=2)
    # Rebuilt from its class name on this side: still an overLimit, Retry-After: 0.
    assert isinstance(err.value, OverLimit) and err.value.headers == {"Retry-After": "0"}
    assert err.value.message == "Quota exceeded, too many security groups."
    with pytest.raises(BadRequest, match="Security group web already exists"):
        await create(groups, project, "web")
    with pytest.raises(BadRequest, match="Security group default already exists"):
        await create(groups, project, "default")
    # The same name in another project is another group.
    assert (await create(groups, new_project(), "web")).id != web.id


async def test_concurrent_creates_never_pass_the_quota(groups, db) -> None:
    project = new_project()
    results = await asyncio.gather(*(create(groups, project, f"g{i}", max_groups=5)
                                     for i in range(12)), return_exceptions=True)
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 4 and all(isinstance(r, SecurityGroupQuotaExceeded) for r in refused)
    assert await db.fetchval("SELECT count(*) FROM security_groups WHERE project_id = $1",
                             project) == 5


async def test_concurrent_creates_of_one_name_make_one_group(groups, db) -> None:
    project = new_project()
    results = await asyncio.gather(*(create(groups, project, "same") for _ in range(8)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, BadRequest) for r in results if isinstance(r, Exception))
    assert await db.fetchval("SELECT count(*) FROM security_groups WHERE project_id = $1 "
                             "AND name = 'same'", project) == 1


async def test_ensure_default_is_idempotent_under_concurrency(groups, db) -> None:
    project = new_project()
    made = await asyncio.gather(*(groups.ensure_default(EnsureDefaultGroup(project_id=project))
                                  for _ in range(6)))
    assert made.count(True) == 1
    rules = await db.fetch("SELECT r.ip_protocol, r.from_port, r.to_port, r.cidr::text AS cidr "
                           "FROM security_group_rules r JOIN security_groups g "
                           "ON g.id = r.parent_group_id WHERE g.project_id = $1", project)
    assert {tuple(r) for r in rules} == {("icmp", -1, -1, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")}


async def test_delete_takes_the_group_off_servers_and_drops_rules_naming_it(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    app = await create(groups, project, "app")
    from_web = await groups.create_rule(rule(project, app.id, 8080, cidr=None, group_id=web.id))
    assert (from_web.group_name, from_web.group_project_id) == ("web", project)
    both = await add_server(db, project, ["default", "web", "app"])
    only_web = await add_server(db, project, ["web"])
    other = new_project()
    other_web = await create(groups, other, "web")
    other_server = await add_server(db, other, ["web"])

    with pytest.raises(NotFound):  # another project's group
        await groups.delete_group(DeleteSecurityGroup(project_id=other, group_id=web.id))
    await groups.delete_group(DeleteSecurityGroup(project_id=project, group_id=web.id))

    assert await server_groups(db, both) == ["default", "app"]
    assert await server_groups(db, only_web) == []
    assert await server_groups(db, other_server) == ["web"]
    assert await db.fetchval("SELECT count(*) FROM security_group_rules WHERE id = $1",
                             from_web.id) == 0
    assert await db.fetchval("SELECT count(*) FROM security_groups WHERE id = $1",
                             other_web.id) == 1
    with pytest.raises(NotFound):
        await groups.delete_group(DeleteSecurityGroup(project_id=project, group_id=web.id))
    default_id = await db.fetchval("SELECT id FROM security_groups WHERE project_id = $1 "
                                   "AND name = 'default'", project)
    with pytest.raises(BadRequest, match="Unable to delete system group 'default'"):
        await groups.delete_group(DeleteSecurityGroup(project_id=project, group_id=default_id))


async def test_update_renames_the_group_on_its_servers_in_place(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    app = await create(groups, project, "app")
    await groups.create_rule(rule(project, web.id, 80))
    from_web = await groups.create_rule(rule(project, app.id, 8080, cidr=None, group_id=web.id))
    both = await add_server(db, project, ["web", "default", "app"])
    only_app = await add_server(db, project, ["app"])
    gone = await add_server(db, project, ["web"])
    await db.execute("UPDATE servers SET deleted_at = now() WHERE id = $1", gone)
    other = new_project()
    await create(groups, other, "web")
    other_server = await add_server(db, other, ["web"])
    before = await db.fetchval("SELECT updated_at FROM servers WHERE id = $1", both)

    msg = UpdateSecurityGroup(project_id=project, group_id=web.id, name="frontend",
                              description="front end servers")
    updated = await groups.update_group(msg)
    assert (updated.id, updated.project_id, updated.name, updated.description) == (
        web.id, project, "frontend", "front end servers")
    assert [(r.from_port, r.cidr) for r in updated.rules] == [(80, "0.0.0.0/0")]
    # The live server keeps its groups in their order, under the new name.
    assert await server_groups(db, both) == ["frontend", "default", "app"]
    assert await db.fetchval("SELECT updated_at FROM servers WHERE id = $1", both) > before
    assert await server_groups(db, only_app) == ["app"]
    assert await server_groups(db, gone) == ["web"]            # deleted: left as it was
    assert await server_groups(db, other_server) == ["web"]    # another project's "web"
    # The rule naming it as source follows by id; the server's rules follow by name.
    rules = await groups.server_rules(GetServerRules(server_id=both))
    assert rules.groups == ("frontend", "default", "app")
    assert {(r.from_port, r.source_group) for r in rules.rules} >= {(80, None),
                                                                  (8080, "frontend")}
    assert await db.fetchval("SELECT group_id FROM security_group_rules WHERE id = $1",
                             from_web.id) == web.id

    # The same update again (a redelivery) changes nothing and answers the same.
    assert await groups.update_group(msg) == updated
    assert await server_groups(db, both) == ["frontend", "default", "app"]
    # No description: the group keeps its own.
    renamed = await groups.update_group(UpdateSecurityGroup(project_id=project, group_id=web.id,
                                                            name="web"))
    assert (renamed.name, renamed.description) == ("web", "front end servers")
    assert await server_groups(db, both) == ["web", "default", "app"]


async def test_update_faults(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    await create(groups, project, "app")
    sid = await add_server(db, project, ["web"])
    default_id = await db.fetchval("SELECT id FROM security_groups WHERE project_id = $1 "
                                   "AND name = 'default'", project)

    def update(group_id: int, name: str, project_id: str = project) -> UpdateSecurityGroup:
        return UpdateSecurityGroup(project_id=project_id, group_id=group_id, name=name,
                                   description="d")

    with pytest.raises(BadRequest, match="Security group app already exists"):
        await groups.update_group(update(web.id, "app"))
    with pytest.raises(BadRequest, match="Security group default already exists"):
        await groups.update_group(update(web.id, "default"))
    with pytest.raises(BadRequest, match="Unable to update system group 'default'"):
        await groups.update_group(update(default_id, "renamed"))
    with pytest.raises(NotFound, match=f"Security group {web.id} not found"):
        await groups.update_group(update(web.id, "mine", project_id=new_project()))
    with pytest.raises(NotFound):
        await groups.update_group(update(2**62, "nope"))
    # None of them changed anything.
    assert [tuple(r) for r in await db.fetch(
        "SELECT name, description FROM security_groups WHERE project_id = $1 ORDER BY id",
        project)] == [("default", "default"), ("web", "web servers"), ("app", "app servers")]
    assert await server_groups(db, sid) == ["web"]


async def test_renames_racing_adds_and_creates_never_leave_a_stale_name(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    sids = [await add_server(db, project, ["default"]) for _ in range(6)]
    adds = [groups.add_to_server(AddServerSecurityGroup(project_id=project, server_id=sid,
                                                        name="web")) for sid in sids]
    rename = groups.update_group(UpdateSecurityGroup(project_id=project, group_id=web.id,
                                                     name="frontend"))
    # A create of the old name racing the rename: before it, the name is taken
    # (400); after it, a new "web" is made.
    results = await asyncio.gather(*adds[:3], rename, create(groups, project, "web"), *adds[3:],
                                   return_exceptions=True)
    renamed, made = results[3], results[4]
    assert renamed.name == "frontend", results
    made_web = not isinstance(made, BaseException)
    assert made.name == "web" if made_web else isinstance(made, BadRequest), results
    added = [r for i, r in enumerate(results) if i not in (3, 4)]
    assert all(r is None or isinstance(r, NotFound) for r in added), results
    names = {r["name"] for r in await db.fetch(
        "SELECT name FROM security_groups WHERE project_id = $1", project)}
    assert names == {"default", "frontend"} | ({"web"} if made_web else set())
    for sid in sids:
        # Every group a server names exists: an add came before the rename (and
        # was renamed with it), or after it (to the new "web", or refused).
        assert set(await server_groups(db, sid)) <= names


# --------------------------------------------------------------------------- rules


async def test_rules_duplicates_quota_and_ownership(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    made = await groups.create_rule(rule(project, web.id, 80, max_rules=3))
    assert (made.parent_group_id, made.ip_protocol, made.from_port, made.to_port, made.cidr,
            made.group_id) == (web.id, "tcp", 80, 80, "0.0.0.0/0", None)
    with pytest.raises(BadRequest, match=f"This rule already exists in group {web.id}"):
        await groups.create_rule(rule(project, web.id, 80))
    # The same ports from another source are another rule; so is a group source.
    await groups.create_rule(rule(project, web.id, 80, cidr="10.0.0.0/8"))
    await groups.create_rule(rule(project, web.id, 80, cidr=None, group_id=web.id))
    with pytest.raises(SecurityGroupQuotaExceeded, match="too many security group rules"):
        await groups.create_rule(rule(project, web.id, 443, max_rules=3))
    await groups.create_rule(rule(project, web.id, 443, max_rules=4))

    other = new_project()
    theirs = await create(groups, other, "theirs")
    with pytest.raises(NotFound, match=f"Security group {theirs.id} not found"):
        await groups.create_rule(rule(project, theirs.id, 22))
    with pytest.raises(NotFound, match=f"Security group {theirs.id} not found"):
        await groups.create_rule(rule(project, web.id, 22, cidr=None, group_id=theirs.id))
    with pytest.raises(NotFound):
        await groups.delete_rule(DeleteSecurityGroupRule(project_id=other, rule_id=made.id))
    await groups.delete_rule(DeleteSecurityGroupRule(project_id=project, rule_id=made.id))
    with pytest.raises(NotFound, match=f"Security group with rule {made.id} not found"):
        await groups.delete_rule(DeleteSecurityGroupRule(project_id=project, rule_id=made.id))


async def test_concurrent_rules_make_one_of_each_and_stay_within_the_quota(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    same = await asyncio.gather(*(groups.create_rule(rule(project, web.id, 80)) for _ in range(8)),
                                return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in same) == 1
    assert all(isinstance(r, BadRequest) for r in same if isinstance(r, Exception))
    many = await asyncio.gather(*(groups.create_rule(rule(project, web.id, 1000 + i, max_rules=5))
                                  for i in range(12)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in many) == 4
    assert await db.fetchval("SELECT count(*) FROM security_group_rules WHERE parent_group_id = $1",
                             web.id) == 5


async def test_rules_naming_each_others_group_do_not_deadlock(groups) -> None:
    project = new_project()
    a, b = await create(groups, project, "a"), await create(groups, project, "b")
    made = await asyncio.gather(*(
        groups.create_rule(rule(project, parent, port, cidr=None, group_id=source))
        for port in range(100, 110) for parent, source in ((a.id, b.id), (b.id, a.id))))
    assert len({r.id for r in made}) == 20


# --------------------------------------------------------------------------- servers


async def test_add_and_remove_a_group_on_a_server(groups, db) -> None:
    project = new_project()
    await create(groups, project, "web")
    sid = await add_server(db, project, ["default"])
    add = AddServerSecurityGroup(project_id=project, server_id=sid, name="web")
    results = await asyncio.gather(*(groups.add_to_server(add) for _ in range(5)),
                                   return_exceptions=True)
    assert results.count(None) == 1
    assert all(isinstance(r, BadRequest) and "already associated" in r.message
               for r in results if r is not None)
    assert await server_groups(db, sid) == ["default", "web"]

    remove = RemoveServerSecurityGroup(project_id=project, server_id=sid, name="web")
    await groups.remove_from_server(remove)
    assert await server_groups(db, sid) == ["default"]
    with pytest.raises(BadRequest, match="is not associated with the instance"):
        await groups.remove_from_server(remove)

    with pytest.raises(NotFound, match=f"Security group nope not found for project {project}"):
        await groups.add_to_server(AddServerSecurityGroup(project_id=project, server_id=sid,
                                                          name="nope"))
    # Another project's group of that name does not count, nor does its server.
    other = new_project()
    await create(groups, other, "db")
    with pytest.raises(NotFound):
        await groups.add_to_server(AddServerSecurityGroup(project_id=project, server_id=sid,
                                                          name="db"))
    with pytest.raises(NotFound):
        await groups.add_to_server(AddServerSecurityGroup(project_id=other, server_id=sid,
                                                          name="db"))
    await db.execute("UPDATE servers SET deleted_at = now() WHERE id = $1", sid)
    with pytest.raises(NotFound):
        await groups.add_to_server(add)


async def test_adds_racing_a_delete_never_leave_a_server_naming_a_deleted_group(groups, db) -> None:
    project = new_project()
    for round_ in range(5):
        web = await create(groups, project, f"web{round_}")
        sids = [await add_server(db, project, ["default"]) for _ in range(6)]
        adds = [groups.add_to_server(AddServerSecurityGroup(project_id=project, server_id=sid,
                                                            name=web.name)) for sid in sids]
        delete = groups.delete_group(DeleteSecurityGroup(project_id=project, group_id=web.id))
        results = await asyncio.gather(*adds[:3], delete, *adds[3:], return_exceptions=True)
        assert all(r is None or isinstance(r, NotFound) for r in results), results
        for sid in sids:
            assert await server_groups(db, sid) == ["default"]


async def test_server_rules_are_the_distinct_rules_of_its_groups(groups, db) -> None:
    project = new_project()
    web = await create(groups, project, "web")
    await groups.create_rule(rule(project, web.id, 80))
    await groups.create_rule(rule(project, web.id, 22))  # the same as a default rule
    await groups.create_rule(rule(project, web.id, 5432, cidr=None, group_id=web.id))
    await groups.create_rule(CreateSecurityGroupRule(
        project_id=project, parent_group_id=web.id, ip_protocol=None, from_port=None,
        to_port=None, group_id=web.id))
    sid = await add_server(db, project, ["default", "web"], ["172.16.9.5"])
    peer = await add_server(db, project, ["web"], ["172.16.9.6", "172.16.9.7"])
    await add_server(db, project, ["default"], ["172.16.9.8"])      # not in web
    gone = await add_server(db, project, ["web"], ["172.16.9.9"])
    await db.execute("UPDATE servers SET deleted_at = now() WHERE id = $1", gone)
    # Another project's server in its own "web" is no source either.
    other = new_project()
    await create(groups, other, "web")
    await add_server(db, other, ["web"], ["172.16.99.5"])

    got = await groups.server_rules(GetServerRules(server_id=sid))
    assert (got.server_id, got.project_id, got.groups) == (sid, project, ("default", "web"))
    members = ("172.16.9.5", "172.16.9.6", "172.16.9.7")
    assert {(r.ip_protocol, r.from_port, r.to_port, r.cidr, r.source_group, r.source_addresses)
            for r in got.rules} == {
        ("icmp", -1, -1, "0.0.0.0/0", None, ()),
        ("tcp", 22, 22, "0.0.0.0/0", None, ()),
        ("tcp", 80, 80, "0.0.0.0/0", None, ()),
        ("tcp", 5432, 5432, None, "web", members),
        (None, None, None, None, "web", members),
    }
    assert len(got.rules) == 5
    only_web = await groups.server_rules(GetServerRules(server_id=peer))
    assert {(r.from_port, r.cidr) for r in only_web.rules} == {(80, "0.0.0.0/0"),
                                                               (22, "0.0.0.0/0"),
                                                               (5432, None), (None, None)}
    # A change applies at once.
    await groups.remove_from_server(RemoveServerSecurityGroup(project_id=project, server_id=sid,
                                                              name="web"))
    after = await groups.server_rules(GetServerRules(server_id=sid))
    assert after.groups == ("default",) and len(after.rules) == 2
    with pytest.raises(NotFound):
        await groups.server_rules(GetServerRules(server_id=gone))
