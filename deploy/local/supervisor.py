"""Run the Nimbus services as background processes: `make up` and the e2e tests.

`Stack` starts each service in its own process group with its log in
`RUN/logs/<name>.log` and its pid in `RUN/pids/<name>.pid`, waits for the
health checks, and stops whole process groups (a service's children go with
it).  A later `Stack` on the same run directory finds the live processes from
the pid files, so `make up` twice leaves one stack and `make down` works from
another shell.

`default_services()` (services.py) is the one place the services are defined;
tests pass other ports.  Standard library only, like `infra.py`.

CLI::

    python -m deploy.local.supervisor up|down|status [--run .run]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from deploy.local import hypervisor, infra
# The service definitions live in services.py; imported from here as before.
from deploy.local.services import (  # noqa: F401
    AZS,
    REPLICATED,
    ServicePorts,
    ServiceSpec,
    api_workers,
    compute_hosts_total,
    default_services,
)

_MARK = "NIMBUS_SUPERVISED"  # tells our processes from a recycled pid
_HAVE_PROC = Path("/proc/self/environ").exists()


class ServiceFailed(RuntimeError):
    """A service died or did not become healthy; the message has its log tail."""


class Stack:
    """A set of service processes sharing a run directory.

    Args:
        run_dir: holds `logs/<name>.log` and `pids/<name>.pid`.
        env: the base environment of every service (e.g. database and broker
            URLs); each spec's `env_extra` is laid over it.
        services: what to run.
        cwd: the services' working directory (the repository by default).
    """

    def __init__(self, run_dir: Path, env: Mapping[str, str], services: Iterable[ServiceSpec],
                 *, cwd: Path | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.env = dict(env)
        self.services = {s.name: s for s in services}
        self.cwd = cwd or Path(__file__).resolve().parents[2]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "pids").mkdir(parents=True, exist_ok=True)

    # -- where things are

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def _mark(self, name: str) -> str:
        return f"{self.run_dir}:{name}"

    def pid(self, name: str) -> int | None:
        """Pid (= process group id) of the live process of `name`, if any."""
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            return proc.pid
        pid = self._recorded_pid(name)
        return pid if pid and infra.pid_alive(pid) and self._is_ours(pid, name) else None

    def _recorded_pid(self, name: str) -> int | None:
        try:
            return int(self._pid_path(name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _is_ours(self, pid: int, name: str) -> bool:
        if not _HAVE_PROC:
            return True  # nothing to ask: trust the pid file
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"{_MARK}={self._mark(name)}".encode() in environ

    def _group(self, name: str) -> int | None:
        """The process group of `name` while any of its processes lives (even if
        the service itself died and left children behind)."""
        proc = self._procs.get(name)
        if proc is not None:
            proc.poll()  # reap our own child, or it lingers as a zombie
        pgid = self._recorded_pid(name) or (proc.pid if proc is not None else None)
        if pgid is None:
            return None
        return pgid if any(self._is_ours(m, name) for m in _group_members(pgid)) else None

    def log_tail(self, name: str, lines: int = 40) -> str:
        return infra.log_tail(self.log_path(name), lines)

    # -- lifecycle

    def start(self, names: Iterable[str] | None = None) -> list[str]:
        """Start the named services (all by default) not already running; return those started."""
        started = []
        for name in names or list(self.services):
            if self.pid(name):
                continue
            self.stop_one(name)  # children a dead service left behind hold its ports
            spec = self.services[name]
            env = {**self.env, **spec.env_extra, _MARK: self._mark(name), "PYTHONUNBUFFERED": "1"}
            with open(self.log_path(name), "ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
                log.flush()
                proc = subprocess.Popen(list(spec.argv), env=env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._procs[name] = proc
            self._pid_path(name).write_text(f"{proc.pid}\n")
            started.append(name)
        return started

    def healthy(self, name: str) -> bool:
        url = self.services[name].health_url
        if url is None:
            return self.pid(name) is not None
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 60.0, names: Iterable[str] | None = None) -> None:
        """Wait until every named service answers its health check with 200.

        Raises:
            ServiceFailed: a service exited or was still unhealthy at the deadline;
                the message carries the tail of its log.
        """
        waiting = list(names or self.services)
        deadline = time.monotonic() + timeout
        while waiting:
            for name in list(waiting):
                if self.pid(name) is None:
                    raise ServiceFailed(f"{name} is not running (exit status {self._exit_status(name)});"
                                        f" last lines of {self.log_path(name)}:\n{self.log_tail(name)}")
                if self.healthy(name):
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                name = waiting[0]
                raise ServiceFailed(f"{', '.join(waiting)} not healthy after {timeout:.0f} s "
                                    f"({self.services[name].health_url}); last lines of "
                                    f"{self.log_path(name)}:\n{self.log_tail(name)}")
            if waiting:
                time.sleep(0.2)

    def _exit_status(self, name: str) -> int | str:
        proc = self._procs.get(name)
        return proc.returncode if proc is not None and proc.returncode is not None else "unknown"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group of `name` (SIGKILL: simulate a crash)."""
        pgid = self._group(name)
        if pgid is None:
            return
        _signal_group(pgid, sig)
        if sig == signal.SIGKILL:
            self._wait_gone(name, pgid, 5)

    def stop_one(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM the group of `name`, SIGKILL it after `timeout` seconds."""
        pgid = self._group(name)
        if pgid is not None:
            _signal_group(pgid, signal.SIGTERM)
            _signal_group(pgid, signal.SIGCONT)  # a stopped process acts on SIGTERM only when let go
            if not self._wait_gone(name, pgid, timeout):
                _signal_group(pgid, signal.SIGKILL)
                self._wait_gone(name, pgid, 5)
        self._pid_path(name).unlink(missing_ok=True)

    def restart(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Stop `name` (if running), start it again and, by default, wait until healthy."""
        self.stop_one(name)
        # Reap our own process before starting anew: until it is reaped it still looks
        # alive, and start() would skip the service (seen on a loaded machine).
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.start([name])
        if wait:
            self.wait_healthy(timeout, [name])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every service: SIGTERM all groups at once, SIGKILL what remains after `timeout`."""
        names = self._known_names()
        groups = {n: g for n in names if (g := self._group(n))}
        for pgid in groups.values():
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, pgid in groups.items():
            if not self._wait_gone(name, pgid, max(0.0, deadline - time.monotonic())):
                _signal_group(pgid, signal.SIGKILL)
                self._wait_gone(name, pgid, 5)
        for name in names:
            self._pid_path(name).unlink(missing_ok=True)

    def status(self) -> dict[str, tuple[int | None, bool]]:
        """{name: (pid or None, healthy)} for every known service."""
        return {n: (self.pid(n), n in self.services and self.healthy(n)) for n in self._known_names()}

    def _known_names(self) -> list[str]:
        # Pid files name services from an earlier run that may no longer be specified.
        on_disk = [p.stem for p in sorted((self.run_dir / "pids").glob("*.pid"))]
        return list(dict.fromkeys([*self.services, *on_disk]))

    def _wait_gone(self, name: str, pgid: int, timeout: float) -> bool:
        """Wait until no live process is left in group `pgid`."""
        deadline = time.monotonic() + timeout
        proc = self._procs.get(name)
        while True:
            if proc is not None:
                proc.poll()  # reap our own child, or it lingers as a zombie
            if not _group_members(pgid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pgid]  # no /proc: assume the group is alive
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


# --------------------------------------------------------------------------- CLI


def _manage(env: Mapping[str, str], command: str, cwd: Path, log: Path) -> None:
    argv = [sys.executable, "-m", "services.api.manage", command]
    proc = subprocess.run(argv, env=dict(env), cwd=cwd, capture_output=True, text=True)
    with open(log, "a") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv[1:])}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise ServiceFailed(f"`python -m services.api.manage {command}` failed ({proc.returncode}):\n"
                            f"{proc.stdout}{proc.stderr}")


def _banner(stack: Stack, ports: ServicePorts) -> str:
    identity = f"http://127.0.0.1:{ports.identity}"
    return f"""
Nimbus is up.

  Identity   {identity}/v3  and  {identity}/v2.0
  Compute    http://127.0.0.1:{ports.api}/v2/{{project_id}}
  Image      http://127.0.0.1:{ports.image}  (Glance v2 subset)
  Network    http://127.0.0.1:{ports.network}  (Neutron v2.0 subset)
  Volumes    http://127.0.0.1:{ports.block_storage}/v3/{{project_id}}  (Cinder v3 subset)
  Consoles   http://127.0.0.1:{ports.console_proxy}  (VNC console proxy: os-getVNCConsole URLs)

  Accounts   demo/demo (project demo), alt/alt (project alt), admin/admin (project admin)

  export OS_AUTH_URL={identity}/v3 OS_USERNAME=demo OS_PASSWORD=demo OS_PROJECT_NAME=demo \\
         OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3

  Logs       {stack.run_dir / 'logs'}/<service>.log  ({', '.join(stack.services)})
  Status     .venv/bin/python -m deploy.local.supervisor status
  Stop       make down   (data kept; `make clean` removes {stack.run_dir})
"""


def run_driver(run: Path, asked: str | None) -> str:
    """The hypervisor driver of the run's compute hosts: the one its first ``make up``
    chose (``make up-real``: libvirt), remembered in ``<run>/compute-driver``, so a
    later ``make up`` restarts the agents on the hypervisor their guests are on.
    ValueError when ``asked`` names another: the hosts' guests would look lost to
    it (``make clean`` starts a run afresh)."""
    record = run / "compute-driver"
    known = record.read_text().strip() if record.is_file() else None
    if asked and known and asked != known:
        raise ValueError(f"this run's compute hosts use the {known} driver, not {asked}; "
                         f"`make down` and `make clean` to start afresh with {asked}")
    driver = asked or known or "fake"
    record.write_text(driver + "\n")
    return driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.supervisor")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--run", type=Path, default=Path(".run"), help="run directory (default .run)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for health")
    args = parser.parse_args(argv)
    run = args.run.resolve()
    ports = ServicePorts()
    replicas = {"api": api_workers(os.environ)}
    many = compute_hosts_total(os.environ)

    def services(env: Mapping[str, str]) -> list[ServiceSpec]:
        return default_services(env, ports=ports, replicas=replicas, compute_hosts=many)

    if args.command == "down":
        if not run.exists():
            print("nothing to stop")
            return 0
        Stack(run, os.environ, services(os.environ)).stop()
        # Real guests (libvirt driver) are powered off as a host shutdown would; the
        # agents find them stopped (SHUTOFF) at the next `make up`.
        guests = hypervisor.stop_guests(run / "libvirt")
        infra.down(run)
        print(f"Nimbus stopped{f', {guests} guest(s) powered off' if guests else ''} "
              f"(data kept in {run}).")
        return 0

    if args.command == "status":
        if not (run / "pids").is_dir():
            print("not running")
            return 1
        stack = Stack(run, os.environ, services(os.environ))
        status = stack.status()
        for name, (pid, healthy) in status.items():
            state = "healthy" if healthy else ("running, not healthy" if pid else "stopped")
            print(f"{name:16} {pid or '-':>8}  {state}")
        return 0 if all(h for _, h in status.values()) else 1

    try:
        # The fake hypervisors keep their guests under the run directory, so they
        # outlive an agent restart as a real host's guests do. The image and volume
        # stores are one directory each that every service reaching them shares.
        env = {"NIMBUS_FAKE_STATE_DIR": str(run / "guests"), "NIMBUS_IMAGES_DIR": str(run / "images"),
               "NIMBUS_VOLUMES_DIR": str(run / "volumes"),
               "NIMBUS_LIBVIRT_STATE_DIR": str(run / "libvirt"), **os.environ,
               **infra.read_env(run)}
    except OSError:
        print(f"no {run / 'infra.env'}: run `python3 -m deploy.local.infra up --root {args.run}` first",
              file=sys.stderr)
        return 1
    try:
        env["NIMBUS_COMPUTE_DRIVER"] = run_driver(run, os.environ.get("NIMBUS_COMPUTE_DRIVER"))
    except ValueError as exc:
        print(f"make up: {exc}", file=sys.stderr)
        return 1
    try:
        # Nimbus Tiny Linux, the seeded image that boots for real (libvirt driver);
        # built from Debian's packages once, then reused.
        from deploy.guest_image import ensure_image
        env.setdefault("NIMBUS_IMAGES_SEED_TINY", str(ensure_image(run / "guest-image")))
    except Exception as exc:  # the cloud runs without it; the fake driver needs no bits
        print(f"note: Nimbus Tiny Linux was not built, so it is not seeded ({exc})",
              file=sys.stderr)
    stack = Stack(run, env, services(env))
    try:
        _manage(env, "migrate", stack.cwd, stack.log_path("manage"))
        _manage(env, "bootstrap", stack.cwd, stack.log_path("manage"))
    except ServiceFailed as exc:
        print(f"make up failed: {exc}", file=sys.stderr)
        return 1
    started = stack.start()
    running = [n for n in stack.services if n not in started]
    if running:
        print(f"already running: {', '.join(running)}")
    try:
        stack.wait_healthy(args.timeout)
    except ServiceFailed as exc:
        print(f"make up failed: {exc}", file=sys.stderr)
        print(f"(the other services still run: `make down` stops them; logs in {run / 'logs'})",
              file=sys.stderr)
        return 1
    print(_banner(stack, ports))
    print(f"  Hypervisor {env['NIMBUS_COMPUTE_DRIVER']}"
          f"{' (real QEMU guests: see README, Real guests)' if env['NIMBUS_COMPUTE_DRIVER'] == 'libvirt' else ''}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
