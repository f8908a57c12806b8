"""Bootstrap: the Default domain, the roles and the contract's three accounts.

| project | user  | password (setting) | roles          |
|---------|-------|--------------------|----------------|
| demo    | demo  | demo_password      | member         |
| alt     | alt   | alt_password       | member         |
| admin   | admin | admin_password     | admin, member  |

Running it again changes nothing, except that a password setting that no
longer matches the stored hash replaces it (so changing the configuration and
re-running ``make up`` changes the password). Nothing else of existing rows is
touched: a disabled bootstrap user stays disabled.
"""

from __future__ import annotations

import asyncpg
import structlog

from services.api.identity import accounts
from services.api.identity.errors import DuplicateName
from services.api.identity.passwords import hash_password_async, verify_password_async
from services.api.identity.settings import IdentitySettings

log = structlog.get_logger(__name__)

ROLE_NAMES = ("member", "admin", "reader")

# Serialises concurrent bootstraps (every API process may run one at start).
_LOCK_KEY = 0x6E696D627573 + 1


async def bootstrap_identity(conn: asyncpg.Connection, settings: IdentitySettings) -> None:
    """Idempotently create the Default domain, the roles, and the projects,
    users and role assignments of the table above, in one transaction (a
    savepoint if the caller opened one)."""
    accounts_spec = (
        ("demo", "demo", settings.demo_password, ("member",)),
        ("alt", "alt", settings.alt_password, ("member",)),
        ("admin", "admin", settings.admin_password, ("admin", "member")),
    )
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await accounts.ensure_domain(conn, accounts.DEFAULT_DOMAIN_ID, accounts.DEFAULT_DOMAIN_NAME,
                                     "The default domain")
        for role in ROLE_NAMES:
            await accounts.ensure_role(conn, role)
        for project_name, user_name, password, roles in accounts_spec:
            project = await accounts.find_project_by_name(
                conn, project_name, domain_id=accounts.DEFAULT_DOMAIN_ID)
            if project is None:
                project_id = await accounts.create_project(
                    conn, project_name, description=f"Bootstrap project {project_name}")
            else:
                project_id = project.id
            user = await accounts.find_user_by_name(conn, user_name,
                                                    domain_id=accounts.DEFAULT_DOMAIN_ID)
            if user is None:
                user_id = await accounts.insert_user(
                    conn, user_name, await hash_password_async(password),
                    default_project_id=project_id)
                if user_id is None:  # created outside the lock, e.g. by the CLI
                    raise DuplicateName("user", user_name)
                log.info("identity.bootstrap_user_created", user=user_name, project=project_name)
            else:
                user_id = user.id
                if not await verify_password_async(password, user.password_hash):
                    await accounts.set_password_hash(conn, user_id,
                                                     await hash_password_async(password))
                    log.info("identity.bootstrap_password_updated", user=user_name)
            for role in roles:
                await accounts.assign_role(conn, user_id, project_id, role)
