"""Private PostgreSQL and RabbitMQ instances for `make up` and the tests.

Standard library only: `make` runs this with the system `python3` before the
virtualenv exists.  Everything lives under one root directory (`.run/` for
`make up`, a temporary directory for a test session); nothing system-wide is
started or touched, so several roots can run side by side on their own ports.

Layout of a root::

    ROOT/infra.json          what runs here (backend, ports), read by `down`
    ROOT/infra.env           NIMBUS_DATABASE_URL=... / NIMBUS_AMQP_URL=...
    ROOT/pg/{data,sock}      the PostgreSQL cluster (owned by `postgres` as root)
    ROOT/pg/postgres.log
    ROOT/rabbitmq/...        the RabbitMQ node: HOME, mnesia, config, pid file
    ROOT/logs/rabbitmq*      the node's logs

Where a Docker engine answers, `up` runs the official images instead (the
`docker` backend); `NIMBUS_INFRA=local|docker` forces the choice.

CLI::

    python3 -m deploy.local.infra ensure|ensure-venv|up|down|env|clean [--root DIR]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
PG_USER, PG_PASSWORD, PG_DB = "nimbus", "nimbus", "nimbus"
PG_IMAGE = os.environ.get("NIMBUS_PG_IMAGE", "postgres:15")
RABBITMQ_IMAGE = os.environ.get("NIMBUS_RABBITMQ_IMAGE", "rabbitmq:3.12-management")

_MARK = "NIMBUS_INFRA_PART"  # in the environment of every server process we start
# Extra server settings that trade durability for speed; tests only.
_PG_FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class InfraError(RuntimeError):
    """A private instance could not be provided; the message says why."""


# --------------------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"[infra] {msg}", file=sys.stderr, flush=True)


def _run(argv: list[str], *, env: dict[str, str] | None = None, check: bool = True,
         timeout: float | None = 120, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    # cwd=/ so that tools run as `postgres` never trip over an unreadable cwd.
    proc = subprocess.run(argv, env=env, cwd="/", text=True, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise InfraError(f"command failed ({proc.returncode}): {shlex.join(argv)}\n"
                         f"{proc.stdout}{proc.stderr}".rstrip())
    if not quiet and proc.returncode == 0 and os.environ.get("NIMBUS_INFRA_DEBUG"):
        _log(shlex.join(argv))
    return proc


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists()  # gone meanwhile, unless there is no /proc
    except (OSError, IndexError):
        return True


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_ports(n: int) -> list[int]:
    """Return `n` distinct TCP ports that are free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _prepare_root(root: Path) -> Path:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    # postgres must be able to traverse the root (mkdtemp makes it 0700).
    mode = root.stat().st_mode
    if os.geteuid() == 0 and not mode & 0o001:
        root.chmod(mode | 0o011)
    (root / "logs").mkdir(exist_ok=True)
    return root


def _marked_env(part: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for processes of one server (`ROOT/pg`, `ROOT/rabbitmq`),
    marked so that `sweep` can find them."""
    return {**(os.environ if base is None else base), _MARK: str(part)}


def sweep(part: Path) -> list[int]:
    """SIGKILL every process still carrying the mark of `part` (`ROOT/pg` or
    `ROOT/rabbitmq`); return their pids.

    The last resort after the servers were asked to stop: it also catches what a
    killed caller left mid-flight (an initdb, a rabbitmqctl that would start a
    new epmd).
    """
    entry = f"{_MARK}={part}".encode()
    killed: list[int] = []
    for _ in range(3):
        found = _processes_with_env(entry)
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    return killed


def _processes_with_env(entry: bytes) -> list[int]:
    """Live processes (not this one) whose environment holds `entry` exactly."""
    found = []
    for name in os.listdir("/proc") if Path("/proc/self/environ").exists() else ():
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if entry in Path(f"/proc/{name}/environ").read_bytes().split(b"\0") and pid_alive(int(name)):
                found.append(int(name))
        except OSError:
            continue
    return found


def _as_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- packages


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _privileged(argv: list[str]) -> list[str]:
    if _as_root():
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-E", *argv]
    raise InfraError(f"need root or sudo to run: {shlex.join(argv)}")


def ensure_packages() -> None:
    """Install the PostgreSQL and RabbitMQ server packages if missing.

    Idempotent and quick when both are present.  The packages' own services are
    not left running: a temporary policy-rc.d forbids starting them during the
    install, and on a systemd host the units installed here are stopped and
    disabled afterwards.
    """
    missing = []
    if _pg_bindir() is None:
        missing.append("postgresql")
    if not RABBITMQ_SERVER.exists():
        missing.append("rabbitmq-server")
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise InfraError(f"missing {', '.join(missing)} and no apt-get to install them; "
                         "install them or set NIMBUS_TEST_DATABASE_URL/NIMBUS_TEST_AMQP_URL")
    _log(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = False
    if not policy.exists():
        # Forbid maintainer scripts from starting the system-wide services.
        _run(_privileged(["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {policy} "
                                      f"&& chmod 755 {policy}"]))
        own_policy = True
    try:
        _run(_privileged(["apt-get", "update", "-q"]), env=env, timeout=600)
        _run(_privileged(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                          "postgresql", "rabbitmq-server"]), env=env, timeout=1200)
    finally:
        if own_policy:
            _run(_privileged(["rm", "-f", str(policy)]), check=False)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        units = {"postgresql": ["postgresql.service"],
                 "rabbitmq-server": ["rabbitmq-server.service", "epmd.socket", "epmd.service"]}
        for pkg in missing:
            _run(_privileged(["systemctl", "disable", "--now", *units[pkg]]), check=False)
    _log("packages installed")


def ensure_venv_support() -> None:
    """Install python3-venv where `python3 -m venv` can't work (Debian leaves it out)."""
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
        return
    except ImportError:
        pass
    _log("installing python3-venv (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(_privileged(["apt-get", "update", "-q"]), env=env, timeout=600)
    _run(_privileged(["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-venv"]),
         env=env, timeout=600)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_home(root: Path) -> Path:
    """Where the cluster lives: ROOT/pg, or a stand-in if postgres can't reach ROOT."""
    home = root / "pg"
    if home.is_symlink() or not _as_root():
        return home.resolve()
    if _run(["runuser", "-u", "postgres", "--", "test", "-x", str(root)], check=False).returncode:
        # A root under e.g. /root is not traversable by postgres: keep the cluster
        # in /var/tmp and leave a symlink, so ROOT/pg still names it.
        other = Path(f"/var/tmp/nimbus-pg-{hashlib.sha1(str(root).encode()).hexdigest()[:12]}")
        other.mkdir(mode=0o755, exist_ok=True)
        if home.exists() and not home.is_symlink():
            shutil.rmtree(home)
        home.symlink_to(other)
        return other
    return home


def _pg_cmd(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if _as_root() else argv


def _pg_superuser() -> str:
    if _as_root():
        return "postgres"
    import getpass
    return getpass.getuser()


def _pg_sockdir(home: Path) -> Path:
    sock = home / "sock"
    if len(str(sock)) > 80:  # sun_path is 108 bytes, with ".s.PGSQL.NNNNN" after it
        sock = Path(tempfile.gettempdir()) / f"nimbus-pgsock-{hashlib.sha1(str(home).encode()).hexdigest()[:10]}"
    return sock


def _pg_running(data: Path) -> tuple[int, int] | None:
    """(pid, port) of the postmaster serving `data`, if one runs."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        if not pid_alive(pid) or b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # a stale pid file, maybe naming a recycled pid
    except (OSError, ValueError, IndexError):
        return None
    return pid, port


def pg_url(port: int, host: str = "127.0.0.1", db: str = PG_DB) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{host}:{port}/{db}"


def _psql(home: Path, port: int, sql: str) -> str:
    argv = _pg_cmd([str(_pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA",
                    "-h", str(_pg_sockdir(home)), "-p", str(port), "-U", _pg_superuser(),
                    "-d", "postgres", "-c", sql])
    return _run(argv).stdout.strip()


def start_postgres(root: Path, port: int, *, fast: bool = False) -> str:
    """Start (or find running) the private cluster under `root`; return the app URL.

    The first start runs initdb and creates role `nimbus` (password `nimbus`,
    LOGIN CREATEDB, not superuser) and database `nimbus` owned by it.
    `fast=True` turns off fsync, synchronous commit and full page writes
    (tests only: a crash loses the data).
    """
    bindir = _pg_bindir()
    if bindir is None:
        raise InfraError("PostgreSQL server binaries not found; run `python3 -m deploy.local.infra ensure`")
    root = _prepare_root(root)
    home = _pg_home(root)
    data, sock, log = home / "data", _pg_sockdir(home), home / "postgres.log"
    running = _pg_running(data)
    if running and running[1] != port:
        _log(f"postgres under {root} runs on {running[1]}, restarting on {port}")
        stop_postgres(root)
        running = None
    if not running:
        for d in (home, sock):
            d.mkdir(parents=True, exist_ok=True)
        log.touch()
        if _as_root():
            for p in (home, sock, log):
                shutil.chown(p, "postgres", "postgres")
        if not (data / "PG_VERSION").exists():
            if data.exists():
                shutil.rmtree(data)  # a half-made cluster from an interrupted initdb
            _run(_pg_cmd([str(bindir / "initdb"), "-D", str(data), "-U", _pg_superuser(),
                          "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                          "--locale=C", "--no-instructions", *(["--no-sync"] if fast else [])]),
                 env=_marked_env(root / "pg"))
        opts = ["-p", str(port), "-k", str(sock), "-c", "listen_addresses=127.0.0.1",
                "-c", "max_connections=300"]
        for setting in _PG_FAST if fast else ():
            opts += ["-c", setting]
        proc = _run(_pg_cmd([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                             "-t", "60", "-o", shlex.join(opts), "start"]),
                    env=_marked_env(root / "pg"), check=False)
        if proc.returncode != 0:
            raise InfraError(f"postgres did not start on port {port}:\n{proc.stdout}{proc.stderr}"
                             f"\n--- {log}\n{log_tail(log)}")
    _psql(home, port,
          f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_USER}') THEN "
          f"CREATE ROLE {PG_USER} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'; END IF; END $$;")
    if not _psql(home, port, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"):
        _psql(home, port, f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")
    return pg_url(port)


def stop_postgres(root: Path, *, mode: str = "fast") -> None:
    """Stop the cluster under `root` if it runs; keep its data.

    `mode` is pg_ctl's: "fast" (the default) or "immediate" for a cluster about
    to be thrown away.
    """
    root = root.resolve()
    home = (root / "pg").resolve()
    data = home / "data"
    running = _pg_running(data)
    if not running or _pg_bindir() is None:
        return
    proc = _run(_pg_cmd([str(_pg_bindir() / "pg_ctl"), "-D", str(data), "-m", mode, "-w",
                         "-t", "30", "stop"]), check=False)
    if proc.returncode != 0 and pid_alive(running[0]):
        os.kill(running[0], signal.SIGQUIT)  # immediate shutdown, children follow


# --------------------------------------------------------------------------- RabbitMQ


def _rabbit_dir(root: Path) -> Path:
    return root / "rabbitmq"


def _rabbit_env(root: Path, node: dict) -> dict[str, str]:
    rdir = _rabbit_dir(root)
    env = _marked_env(root / "rabbitmq", {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))})
    env.update(
        HOME=str(rdir / "home"),  # the Erlang cookie lives here; rabbitmqctl needs the same
        LC_ALL="C.UTF-8", LANG="C.UTF-8",
        ERL_EPMD_PORT=str(node["epmd_port"]),
        ERL_EPMD_ADDRESS="127.0.0.1",
        # Erlang distribution on loopback only (it listens everywhere otherwise).
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        RABBITMQ_NODENAME=node["nodename"],
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(node["port"]),
        RABBITMQ_DIST_PORT=str(node["dist_port"]),
        RABBITMQ_MNESIA_BASE=str(rdir / "mnesia"),
        RABBITMQ_LOG_BASE=str(root / "logs" / "rabbitmq"),
        RABBITMQ_PID_FILE=str(rdir / "rabbitmq.pid"),
        RABBITMQ_CONFIG_FILE=str(rdir / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(rdir / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(rdir / "enabled_plugins"),
        RABBITMQ_CONF_ENV_FILE=str(rdir / "rabbitmq-env.conf"),
    )
    return env


def _rabbit_node(root: Path) -> dict:
    node = _read_json(_rabbit_dir(root) / "node.json")
    if not node:
        raise InfraError(f"no RabbitMQ node under {root}")
    return node


def rabbitmqctl(root: Path, *args: str, timeout: float = 120, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
    """Run rabbitmqctl against the private node under `root` (its env, its epmd)."""
    root = root.resolve()
    node = _rabbit_node(root)
    return _run([str(RABBITMQ_CTL), "-n", node["nodename"], *args],
                env=_rabbit_env(root, node), timeout=timeout, check=check)


def amqp_url(port: int, host: str = "127.0.0.1", vhost: str = "") -> str:
    from urllib.parse import quote
    return f"amqp://guest:guest@{host}:{port}/{quote(vhost, safe='')}"


def _rabbit_server_pid(root: Path) -> int | None:
    """Pid (and process group) of the node's rabbitmq-server, if it still runs."""
    pid = _read_json(_rabbit_dir(root) / "node.json").get("pid")
    if not pid or not pid_alive(pid):
        return None
    try:  # a recycled pid is someone else's
        if b"rabbitmq" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except FileNotFoundError:
        return None
    except OSError:
        pass
    return pid


def start_rabbitmq(root: Path, port: int, dist_port: int, epmd_port: int) -> str:
    """Start (or find running) the private RabbitMQ node under `root`; return its URL.

    The node is `nimbus-<port>@localhost` with its own epmd on `epmd_port`,
    no plugins and no system configuration.  It runs detached in its own
    process group, so it outlives the caller until `stop_rabbitmq`.
    """
    if not RABBITMQ_SERVER.exists():
        raise InfraError("RabbitMQ not installed; run `python3 -m deploy.local.infra ensure`")
    root = _prepare_root(root)
    rdir = _rabbit_dir(root)
    node = {"port": port, "dist_port": dist_port, "epmd_port": epmd_port,
            "nodename": f"nimbus-{port}@localhost"}
    old = _read_json(rdir / "node.json")
    if _rabbit_server_pid(root):
        if {k: old.get(k) for k in node} == node:
            rabbitmqctl(root, "await_startup", "--timeout", "120", timeout=150)
            return amqp_url(port)
        _log(f"rabbitmq under {root} runs with other ports, restarting")
        stop_rabbitmq(root)
    for d in (rdir / "home", rdir / "mnesia", root / "logs" / "rabbitmq"):
        d.mkdir(parents=True, exist_ok=True)
    (rdir / "home").chmod(0o700)
    (rdir / "enabled_plugins").write_text("[].\n")
    (rdir / "rabbitmq-env.conf").write_text("")
    (rdir / "rabbitmq.conf").write_text(
        "# Private node for Nimbus; written by deploy/local/infra.py\n"
        "loopback_users.guest = true\n"
        "disk_free_limit.absolute = 20MB\n"
        "log.file.level = info\n"
        "log.console = false\n"
    )
    for p in (port, dist_port):
        if _port_open(p):
            raise InfraError(f"port {p} is taken by another process; choose other RabbitMQ ports")
    env = _rabbit_env(root, node)
    out = root / "logs" / "rabbitmq-server.out"
    with open(out, "ab") as fh:
        proc = subprocess.Popen([str(RABBITMQ_SERVER)], env=env, cwd=str(rdir), stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    _write_json(rdir / "node.json", {**node, "pid": proc.pid})
    deadline = time.monotonic() + 120
    while not _port_open(port):
        if proc.poll() is not None:
            raise InfraError(f"rabbitmq-server exited ({proc.returncode}) before listening on {port}:\n"
                             f"{log_tail(out)}\n--- {root / 'logs' / 'rabbitmq'}")
        if time.monotonic() > deadline:
            stop_rabbitmq(root)
            raise InfraError(f"rabbitmq-server not listening on {port} after 120 s:\n{log_tail(out)}")
        time.sleep(0.1)
    rabbitmqctl(root, "await_startup", "--timeout", "120", timeout=150)
    return amqp_url(port)


def _epmd() -> str | None:
    found = shutil.which("epmd") or sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def stop_rabbitmq(root: Path, *, graceful: bool = True) -> None:
    """Stop the node under `root` and its private epmd; leave no process behind.

    `graceful=False` kills the node outright (for a node about to be thrown away).
    """
    root = root.resolve()
    node = _read_json(_rabbit_dir(root) / "node.json")
    if not node:
        return
    pid = _rabbit_server_pid(root)
    if pid:
        if graceful:
            rabbitmqctl(root, "shutdown", "--timeout", "30", timeout=60, check=False)
            deadline = time.monotonic() + 15
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        try:  # whatever is left of the node's process group
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    epmd = _epmd()
    if epmd:
        # Refused while a node is still registered; the sweep below settles that case.
        _run([epmd, "-port", str(node["epmd_port"]), "-kill"],
             env=_rabbit_env(root, node), check=False, timeout=10)
    sweep(root / "rabbitmq")


def kill_rabbitmq(root: Path) -> None:
    """SIGKILL the node under `root` (not its epmd): a broker crash, for fault tests.
    `start_rabbitmq` with the same ports brings it back with its durable data."""
    pid = _rabbit_server_pid(root.resolve())
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def rabbitmq_ports(root: Path) -> tuple[int, int, int]:
    """(port, dist_port, epmd_port) of the node under `root`."""
    node = _rabbit_node(root.resolve())
    return node["port"], node["dist_port"], node["epmd_port"]


def add_vhosts(root: Path, names: list[str], user: str = "guest") -> None:
    """Create vhosts on the private node, with full permissions for `user`.

    One rabbitmqctl call for the whole batch (each call costs about a second).
    """
    if not names:
        return
    defs = {"vhosts": [{"name": n} for n in names],
            "permissions": [{"user": user, "vhost": n, "configure": ".*", "write": ".*", "read": ".*"}
                            for n in names]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=_rabbit_dir(root.resolve()),
                                     delete=False) as fh:
        json.dump(defs, fh)
    try:
        rabbitmqctl(root, "import_definitions", fh.name)
    finally:
        os.unlink(fh.name)


def add_vhost(root: Path, name: str, user: str = "guest") -> None:
    add_vhosts(root, [name], user)


def delete_vhosts(root: Path, names: list[str]) -> None:
    """Delete vhosts (and everything in them) from the private node, in one call."""
    if not names:
        return
    # rabbit_vhost:delete/2 is internal but stable since 3.7; fall back per name.
    terms = ",".join(f'<<"{n}">>' for n in names)
    proc = rabbitmqctl(root, "eval", f'[rabbit_vhost:delete(V, <<"nimbus">>) || V <- [{terms}]], ok.',
                       check=False)
    if proc.returncode != 0 or "ok" not in proc.stdout:
        for name in names:
            rabbitmqctl(root, "delete_vhost", name, check=False)


def delete_vhost(root: Path, name: str) -> None:
    delete_vhosts(root, [name])


# --------------------------------------------------------------------------- Docker


def docker_answers() -> bool:
    """True if a Docker engine answers `docker info` (not just a client installed)."""
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def backend() -> str:
    """`docker` where an engine answers, else `local`; NIMBUS_INFRA overrides."""
    choice = os.environ.get("NIMBUS_INFRA", "auto")
    if choice in ("local", "docker"):
        return choice
    return "docker" if docker_answers() else "local"


def _docker_names(pg_port: int, amqp_port: int) -> tuple[str, str]:
    return f"nimbus-pg-{pg_port}", f"nimbus-rabbitmq-{amqp_port}"


def _docker_start(name: str, run_args: list[str]) -> None:
    state = _run(["docker", "inspect", "-f", "{{.State.Running}}", name], check=False)
    if state.returncode != 0:
        _run(["docker", "run", "-d", "--name", name, *run_args], timeout=900)
    elif state.stdout.strip() != "true":
        _run(["docker", "start", name])


def _docker_up(root: Path, pg_port: int, amqp_port: int) -> tuple[str, str]:
    pg, rabbit = _docker_names(pg_port, amqp_port)
    _docker_start(pg, ["-e", f"POSTGRES_USER={PG_USER}", "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}",
                       "-e", f"POSTGRES_DB={PG_DB}", "-p", f"127.0.0.1:{pg_port}:5432",
                       "-v", f"{pg}:/var/lib/postgresql/data", PG_IMAGE])
    _docker_start(rabbit, ["-p", f"127.0.0.1:{amqp_port}:5672", "--hostname", rabbit,
                           "-v", f"{rabbit}:/var/lib/rabbitmq", RABBITMQ_IMAGE])
    deadline = time.monotonic() + 180
    while _run(["docker", "exec", pg, "pg_isready", "-h", "127.0.0.1", "-U", PG_USER],
               check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise InfraError(f"container {pg} not ready:\n{_run(['docker', 'logs', pg], check=False).stderr}")
        time.sleep(0.5)
    _run(["docker", "exec", rabbit, "rabbitmqctl", "await_startup", "--timeout", "180"], timeout=200)
    _write_json(root / "infra.json", {"backend": "docker", "containers": [pg, rabbit],
                                      "pg_port": pg_port, "amqp_port": amqp_port})
    return pg_url(pg_port), amqp_url(amqp_port)


# --------------------------------------------------------------------------- up / down


def ports_from_env() -> dict[str, int]:
    env = os.environ
    return {"pg_port": int(env.get("NIMBUS_PG_PORT", 15433)),
            "amqp_port": int(env.get("NIMBUS_AMQP_PORT", 15673)),
            "dist_port": int(env.get("NIMBUS_AMQP_DIST_PORT", 15674)),
            "epmd_port": int(env.get("NIMBUS_EPMD_PORT", 15675))}


def up(root: Path, *, pg_port: int, amqp_port: int, dist_port: int, epmd_port: int,
       fast: bool = False) -> dict[str, str]:
    """Provide PostgreSQL and RabbitMQ for `root`; write ROOT/infra.env; return its values."""
    root = _prepare_root(root)
    if backend() == "docker":
        db, amqp = _docker_up(root, pg_port, amqp_port)
    else:
        ensure_packages()
        db = start_postgres(root, pg_port, fast=fast)
        amqp = start_rabbitmq(root, amqp_port, dist_port, epmd_port)
        _write_json(root / "infra.json", {"backend": "local", "pg_port": pg_port, "amqp_port": amqp_port,
                                          "dist_port": dist_port, "epmd_port": epmd_port})
    values = {"NIMBUS_DATABASE_URL": db, "NIMBUS_AMQP_URL": amqp}
    (root / "infra.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values


def down(root: Path) -> None:
    """Stop what `up` started under `root`; data is kept."""
    root = root.resolve()
    if not root.exists():
        return
    state = _read_json(root / "infra.json")
    if state.get("backend") == "docker":
        for name in state.get("containers", []):
            _run(["docker", "stop", name], check=False)
        return
    try:
        stop_rabbitmq(root)
    finally:
        stop_postgres(root)


def clean(root: Path, *, graceful: bool = True) -> None:
    """Stop everything under `root` and remove it with all its data.

    `graceful=False` kills the servers instead of shutting them down (tests).
    """
    root = root.resolve()
    state = _read_json(root / "infra.json")
    if graceful or state.get("backend") == "docker":
        down(root)
    else:
        try:
            stop_rabbitmq(root, graceful=False)
            stop_postgres(root, mode="immediate")
        finally:
            sweep(root / "rabbitmq")
            sweep(root / "pg")
    if state.get("backend") == "docker":
        for name in state.get("containers", []):
            _run(["docker", "rm", "-f", "-v", name], check=False)
            _run(["docker", "volume", "rm", name], check=False)
    pg = root / "pg"
    if pg.is_symlink():
        shutil.rmtree(pg.resolve(), ignore_errors=True)
    sock = _pg_sockdir(pg.resolve())
    if not str(sock).startswith(str(root)):
        shutil.rmtree(sock, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def read_env(root: Path) -> dict[str, str]:
    """The KEY=VALUE lines of ROOT/infra.env."""
    values = {}
    for line in (root / "infra.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def watchdog(pid: int, root: Path, interval: float = 0.5) -> None:
    """Wait for process `pid` to end, then destroy `root` (for crashed test sessions)."""
    while pid_alive(pid):
        time.sleep(interval)
    if root.exists():
        clean(root, graceful=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m deploy.local.infra", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["ensure", "ensure-venv", "up", "down", "env", "clean", "watchdog"])
    parser.add_argument("--root", type=Path, default=Path(".run"))
    parser.add_argument("--pid", type=int, help="watchdog: the process to outlive")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            if backend() == "local":
                ensure_packages()
        elif args.command == "ensure-venv":
            ensure_venv_support()
        elif args.command == "up":
            started = time.monotonic()
            values = up(args.root, **ports_from_env())
            _log(f"PostgreSQL and RabbitMQ ready in {time.monotonic() - started:.1f} s "
                 f"({args.root / 'infra.env'})")
            for k, v in values.items():
                print(f"{k}={v}")
        elif args.command == "down":
            down(args.root)
        elif args.command == "env":
            for k, v in read_env(args.root).items():
                print(f"{k}={v}")
        elif args.command == "clean":
            clean(args.root)
        elif args.command == "watchdog":
            watchdog(args.pid, args.root)
    except (InfraError, OSError, subprocess.TimeoutExpired) as exc:
        _log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
