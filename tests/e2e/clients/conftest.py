"""The stock clients as a user runs them: the ``openstack`` and ``nova`` commands as
subprocesses, with the README's ``export OS_*`` environment, against the e2e stack.

The commands are the ones ``make test`` installs into the test venv (the ``test``
extras pin python-openstackclient and python-novaclient), so they are looked up
next to ``sys.executable``, never on ``PATH``: a different release elsewhere on
the machine must not stand in for them. Each runs in a worker thread (the
session's event loop keeps serving the other fixtures) with a timeout, and a
failing command fails the test with its argv, exit code, stdout and stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client import Cloud
from tests.e2e.projects import new_project

BIN = Path(sys.executable).parent
# One command: auth, discovery and a few calls; --wait polls for a few seconds.
CLI_TIMEOUT_S = 120

CIRROS = "CirrOS 0.3.1 (x86_64)"
FLAVOR = "standard.xsmall"
FLAVOR_ID = "100"


def executable(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        raise AssertionError(f"{path} is missing: make test installs the clients (pyproject "
                             "test extras); run `make venv` or pip install -e '.[test]'")
    return str(path)


def user_env(cloud: Cloud, user: str, password: str, project: str) -> dict[str, str]:
    """The README's ``export OS_*`` line for one user, on a copy of this process's
    environment without any OS_* of the caller's (an OS_CLOUD or OS_TOKEN left in
    a developer's shell must not redirect the commands)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({
        "OS_AUTH_URL": f"{cloud.identity_url}/v3",
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_ID": "default",
        "OS_PROJECT_DOMAIN_ID": "default",
        "OS_IDENTITY_API_VERSION": "3",
    })
    return env


class CommandFailed(AssertionError):
    pass


def table(text: str) -> list[dict[str, str]]:
    """Rows of a PrettyTable as novaclient prints it (``| a | b |`` lines between
    ``+---+`` rules; the first row is the header). A value that wraps onto more
    lines is joined with spaces."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    if not rows:
        return []
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[1:]
    out: list[dict[str, str]] = []
    for values in body:
        if out and values[0] == "" and len(header) == 2:   # continuation of a wrapped value
            out[-1][header[1]] += " " + values[1]
            continue
        out.append(dict(zip(header, values, strict=True)))
    return out


def properties(text: str) -> dict[str, str]:
    """``nova show``'s two-column Property/Value table as a dict."""
    return {row["Property"]: row["Value"] for row in table(text)}


@dataclass
class Clients:
    cloud: Cloud
    envs: dict[str, dict[str, str]]
    tag: str

    async def new_user(self) -> tuple[str, str]:
        """A project of its own with one member (the management command), as a new
        customer starts: no server, network or group made yet. Returns the name
        to pass as ``user=`` and the project's id."""
        api, name = await new_project(self.cloud)
        self.envs[name] = user_env(self.cloud, name, "pw", name)
        return name, api.project_id

    def name(self, what: str) -> str:
        """A name of this session's own (other e2e tests share the demo project)."""
        return f"cli-{self.tag}-{what}"

    async def run(self, program: str, *args: str, user: str = "demo",
                  check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [executable(program), *args]
        try:
            done = await asyncio.to_thread(subprocess.run, argv, env=self.envs[user],
                                           capture_output=True, text=True,
                                           timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise CommandFailed(f"{argv} still running after {CLI_TIMEOUT_S} s\n"
                                f"stdout:\n{e.stdout}\nstderr:\n{e.stderr}") from None
        if check and done.returncode != 0:
            raise CommandFailed(f"{' '.join(argv[1:])} as {user} exited {done.returncode}\n"
                                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    async def osc(self, *args: str, user: str = "demo") -> str:
        """``openstack args`` (a command without output, or plain text); its stdout."""
        return (await self.run("openstack", *args, user=user)).stdout

    async def osc_json(self, *args: str, user: str = "demo") -> Any:
        """``openstack args -f json``, parsed."""
        out = await self.osc(*args, "-f", "json", user=user)
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            raise CommandFailed(f"openstack {' '.join(args)}: not JSON:\n{out}") from None

    async def osc_fails(self, *args: str, user: str = "demo") -> subprocess.CompletedProcess[str]:
        """``openstack args``, which must fail (exit status not 0)."""
        done = await self.run("openstack", *args, user=user, check=False)
        if done.returncode == 0:
            raise CommandFailed(f"openstack {' '.join(args)} succeeded:\n{done.stdout}")
        return done

    async def nova(self, *args: str, user: str = "demo") -> str:
        return (await self.run("nova", *args, user=user)).stdout

    async def status(self, server: str) -> str:
        return (await self.osc("server", "show", server, "-c", "status", "-f", "value")).strip()


@pytest.fixture(scope="session")
async def clients(cloud: Cloud) -> Clients:
    return Clients(cloud, {
        "demo": user_env(cloud, "demo", "demo", "demo"),
        "alt": user_env(cloud, "alt", "alt", "alt"),
        "admin": user_env(cloud, "admin", "admin", "admin"),
    }, uuid.uuid4().hex[:6])


@pytest.fixture(scope="session")
async def server(clients: Clients) -> AsyncIterator[dict]:
    """One ACTIVE server of the demo user's, booted by name of image and flavor with
    ``--wait``, for the action commands (each leaves it ACTIVE again); deleted at
    the end of the session."""
    name = clients.name("vm")
    shown = await clients.osc_json("server", "create", "--image", CIRROS, "--flavor", FLAVOR,
                                   "--wait", name)
    try:
        yield shown
    finally:
        await clients.run("openstack", "server", "delete", "--wait", shown["id"], check=False)
