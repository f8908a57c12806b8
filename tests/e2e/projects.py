"""Projects of a test's own, made with the management command, so that the demo
project keeps the defaults the other tests rely on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.client import Api, Cloud

REPO = Path(__file__).resolve().parents[2]


async def manage(cloud: Cloud, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m services.api.manage`` against the stack's database."""
    env = {**os.environ, "NIMBUS_DATABASE_URL": cloud.db_url}
    env.pop("NIMBUS_CONFIG", None)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.api.manage", *args], env=env, cwd=REPO,
        capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def new_project(cloud: Cloud, **limits: int) -> tuple[Api, str]:
    """A project with one member, its quotas set by the management command."""
    name = f"lim-{uuid.uuid4().hex[:8]}"
    await manage(cloud, "create-project", name)
    await manage(cloud, "create-user", name, "--password", "pw", "--project", name)
    for key, value in limits.items():
        await manage(cloud, "set-quota", name, key, str(value))
    return await cloud.login(name, "pw", name), name


async def delete_all(api: Api) -> None:
    for server in (await api.get("/servers")).json["servers"]:
        await api.delete(f"/servers/{server['id']}")
