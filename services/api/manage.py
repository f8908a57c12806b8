"""``python -m services.api.manage``: the management command.

    migrate                              apply database migrations
    bootstrap                            accounts of the contract and the seeded catalog
    create-project NAME [--description D]
    create-user NAME --password P --project NAME [--role member|admin]
    set-quota PROJECT KEY VALUE          e.g. maxTotalInstances 5 (-1 unlimited, "default")
    set-rate-limit PROJECT VERB URI REGEX VALUE UNIT
                                         e.g. POST '*' '.*' 10 MINUTE
    clear-rate-limits PROJECT            back to the default rate limits
    show-limits PROJECT                  quotas, usage and rate limits in effect
    create-network PROJECT NAME [--cidr CIDR]
                                         a further network of the project (the next
                                         block of default_prefixlen of the
                                         supernet without --cidr)
    dead-letters [--queue Q] [--requeue] the messages the services gave up on, and why;
                                         --requeue sends them back once the cause is fixed
    forget-host HOST                     a compute host gone for good: frees the fixed
                                         addresses its deleted servers still hold

PROJECT is a project's name (in the Default domain) or id.

Reads the same configuration as the services (``NIMBUS_CONFIG``, ``NIMBUS_*``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncpg

from services.api import quotas
from services.api.catalog import bootstrap_catalog
from services.api.identity import (
    IdentityError,
    assign_role,
    bootstrap_identity,
    create_project,
    create_user,
    find_project_by_id,
    find_project_by_name,
)
from services.api.identity.accounts import Project
from services.api.manage_delivery import dead_letters, forget_host, format_dead_letters
from services.api.queries import quotas as quota_q
from services.api.ratelimit import (
    DEFAULT_RULES,
    RULES_TTL_S,
    UNIT_SECONDS,
    VERBS,
    Rule,
    effective_rules,
)
from services.api.ratelimit import status as rate_status
from services.api.settings import Settings
from services.network import networks as network_sql
from services.network.settings import Settings as NetworkServiceSettings
from shared import config, logging
from shared.db.migrate import apply_migrations
from shared.db.pool import connect
from shared.errors import ComputeError
from shared.image_store import ImageStore


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.api.manage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("bootstrap", help="create the contract's accounts and the seeded catalog")
    cp = sub.add_parser("create-project", help="create a project")
    cp.add_argument("name")
    cp.add_argument("--description", default="")
    cu = sub.add_parser("create-user", help="create a user with a role on a project")
    cu.add_argument("name")
    cu.add_argument("--password", required=True)
    cu.add_argument("--project", required=True)
    cu.add_argument("--role", default="member", choices=["member", "admin"])
    sq = sub.add_parser("set-quota", help="set a project's absolute limit (quota)")
    sq.add_argument("project")
    sq.add_argument("key", choices=sorted(quotas.DEFAULT_LIMITS))
    sq.add_argument("value", help="an integer, -1 for unlimited, or 'default'")
    sr = sub.add_parser("set-rate-limit", help="set a project's rate limit for a verb and uri")
    sr.add_argument("project")
    sr.add_argument("verb", choices=VERBS)
    sr.add_argument("uri", help="label shown in /limits, e.g. '*' or '*/servers'; a default "
                                "rule with the same verb and uri is replaced")
    sr.add_argument("regex", help="matched against the path after /v2/{project_id}")
    sr.add_argument("value", type=int, help="requests allowed per unit (at least 1)")
    sr.add_argument("unit", choices=list(UNIT_SECONDS))
    cr = sub.add_parser("clear-rate-limits", help="drop a project's own rate limits")
    cr.add_argument("project")
    sl = sub.add_parser("show-limits", help="a project's quotas, usage and rate limits")
    sl.add_argument("project")
    cn = sub.add_parser("create-network", help="create a further network of a project "
                        "(servers of a project with several must name theirs)")
    cn.add_argument("project")
    cn.add_argument("name")
    cn.add_argument("--cidr", help="its IPv4 subnet, /16 to /30 (default: the next block of "
                                   "the network service's default_prefixlen in its "
                                   "project_supernet)")
    dl = sub.add_parser("dead-letters", help="list the messages the services gave up on")
    dl.add_argument("--queue", help="only this service queue (e.g. scheduler, compute.HOST)")
    dl.add_argument("--requeue", action="store_true",
                    help="send them back to their queues (once the cause is fixed)")
    fh = sub.add_parser("forget-host", help="free what a compute host gone for good holds")
    fh.add_argument("host")
    return p


async def _create_network(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    """Made by the network service's own code (it owns the networks' SQL), with its
    settings (``[network]``, ``NIMBUS_NETWORK_*``)."""
    project = await _project(conn, args.project)
    net_settings = config.load(NetworkServiceSettings).network
    cidr = network_sql.parse_cidr(args.cidr) if args.cidr is not None else None
    try:
        net = await network_sql.create(conn, project.id, args.name, cidr=cidr,
                                       supernet=net_settings.supernet,
                                       default_name=net_settings.default_network_name,
                                       prefixlen=net_settings.default_prefixlen)
    except ComputeError as exc:
        raise ValueError(exc.message) from None
    lines = [f"network {net.name} id {net.id} cidr {net.cidr} gateway {net.gateway} "
             f"(project {project.name})"]
    for other in await network_sql.of_project(conn, project.id):
        if other.id != net.id:
            lines.append(f"  also: network {other.name} id {other.id} cidr {other.cidr}"
                         f"{' (default)' if other.is_default else ''}")
    return "\n".join(lines)


async def _project(conn: asyncpg.Connection, ref: str) -> Project:
    project = (await find_project_by_name(conn, ref, domain_id="default")
               or await find_project_by_id(conn, ref))
    if project is None:
        raise ValueError(f"no project named {ref!r} (or with that id)")
    return project


def _quota_value(text: str) -> int | None:
    if text == "default":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"quota value must be an integer, -1 or 'default', not {text!r}") from None
    if value < -1 or value > 2**31 - 1:
        raise ValueError(f"quota value must be -1 (unlimited) or 0 to {2**31 - 1}, not {value}")
    return value


async def _limits_command(args: argparse.Namespace, conn: asyncpg.Connection) -> str:
    project = await _project(conn, args.project)
    if args.command == "set-quota":
        value = _quota_value(args.value)
        await quota_q.set_quota(conn, project.id, args.key, value)
        now = (await quotas.absolute_limits(conn, project.id))[args.key]
        return (f"project {project.name}: {args.key} = {now}"
                f"{' (the default)' if value is None else ''}{' (unlimited)' if now == -1 else ''}")
    if args.command == "set-rate-limit":
        rule = Rule(args.verb, args.uri, args.regex, args.value, args.unit)
        await quota_q.set_rate_limit(conn, project.id, verb=rule.verb, uri=rule.uri,
                                     regex=rule.regex, value=rule.value, unit=rule.unit)
        return (f"project {project.name}: {rule.verb} {rule.uri} ({rule.regex}) "
                f"{rule.value}/{rule.unit}; the API applies it within {RULES_TTL_S:g} s")
    if args.command == "clear-rate-limits":
        n = await quota_q.clear_rate_limits(conn, project.id)
        return (f"project {project.name}: {n} rate limit(s) removed, the defaults apply "
                f"within {RULES_TTL_S:g} s")
    assert args.command == "show-limits"
    return await _show_limits(conn, project)


async def _show_limits(conn: asyncpg.Connection, project: Project) -> str:
    own = await quota_q.quotas(conn, project.id)
    limits = await quotas.absolute_limits(conn, project.id)
    used = await quotas.used_limits(conn, project.id)
    lines = [f"project {project.name} ({project.id})", "absolute limits:"]
    for key, value in sorted(limits.items()):
        lines.append(f"  {key:24} {value:>8}  {'project' if key in own else 'default'}")
    lines.append("used:")
    lines += [f"  {key:24} {value:>8}" for key, value in sorted(used.items())]
    overrides = [Rule(r["verb"], r["uri"], r["regex"], r["value"], r["unit"])
                 for r in await quota_q.rate_limits(conn, project.id)]
    lines.append("rate limits (shared by every API process; remaining now):")
    for s in await rate_status(conn, project.id, effective_rules(overrides)):
        rule = s.rule
        source = "default" if rule in DEFAULT_RULES else "project"
        lines.append(f"  {rule.verb:6} {rule.uri:18} {rule.value:>6}/{rule.unit:6}  "
                     f"{s.remaining:>6} left  {source:7}  {rule.regex}")
    return "\n".join(lines)


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    dsn = settings.database.url
    if args.command == "migrate":
        applied = await apply_migrations(dsn)
        return f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}"
    await apply_migrations(dsn)
    conn = await connect(dsn)
    try:
        if args.command == "bootstrap":
            await bootstrap_identity(conn, settings.identity)
            images = settings.images
            await bootstrap_catalog(conn, ImageStore.from_settings(images),
                                    Path(images.seed_tiny) if images.seed_tiny else None)
            return "bootstrapped accounts demo, alt, admin and the seeded catalog"
        if args.command == "create-project":
            pid = await create_project(conn, args.name, args.description)
            return f"project {args.name} id {pid}"
        if args.command == "create-user":
            uid = await create_user(conn, args.name, args.password, args.project, role=args.role)
            if args.role == "admin":  # like the bootstrap admin: also a member of its project
                project = await find_project_by_name(conn, args.project, domain_id="default")
                assert project is not None
                await assign_role(conn, uid, project.id, "member")
            return f"user {args.name} id {uid} ({args.role} of {args.project})"
        if args.command == "create-network":
            return await _create_network(conn, args)
        if args.command == "dead-letters":
            letters = await dead_letters(conn, settings.amqp.url, queue=args.queue,
                                         requeue=args.requeue)
            return format_dead_letters(letters, requeued=args.requeue)
        if args.command == "forget-host":
            return await forget_host(conn, args.host)
        return await _limits_command(args, conn)
    finally:
        await conn.close()
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = config.load(Settings)
    logging.configure("manage", "warning")
    try:
        print(asyncio.run(_run(args, settings)))
    except (IdentityError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: cannot reach the database ({exc}); "
                         "is NIMBUS_DATABASE_URL right and PostgreSQL running?") from None


if __name__ == "__main__":
    main()
