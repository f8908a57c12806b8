"""``python -m services.api.manage``: the management command.

    migrate                              apply database migrations
    bootstrap                            accounts of the contract and the seeded catalog
    create-project NAME [--description D]
    create-user NAME --password P --project NAME [--role member|admin]

Reads the same configuration as the services (``NIMBUS_CONFIG``, ``NIMBUS_*``).
"""

from __future__ import annotations

import argparse
import asyncio

from services.api.catalog import bootstrap_catalog
from services.api.identity import (IdentityError, assign_role, bootstrap_identity,
                                   create_project, create_user, find_project_by_name)
from services.api.settings import Settings
from shared import config, logging
from shared.db.migrate import apply_migrations
from shared.db.pool import connect


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
    return p


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
            await bootstrap_catalog(conn)
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
