"""CPU-seconds and memory of the processes a measure involves, read from /proc.

Wall time on a shared 2-core machine says little; the CPU each process spent
does not depend on who else was running. A *group* is named processes (a
service, PostgreSQL's postmaster, RabbitMQ's beam.smp) together with all their
descendants. Its CPU is the sum, over every live member, of
``utime + stime + cutime + cstime`` (``/proc/<pid>/stat``, in clock ticks): a
child that ends between two readings is reaped by its parent, which then
carries its time in ``cutime``/``cstime``, so the sum only grows and a
PostgreSQL backend or autovacuum worker that came and went is still counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 first)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(roots: Iterable[int], children: Mapping[int, list[int]] | None = None) -> list[int]:
    """``roots`` and all their live descendants."""
    children = _children_map() if children is None else children
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_s(pids: Iterable[int]) -> float:
    """CPU-seconds of ``pids`` and of their reaped children."""
    ticks = 0
    for pid in pids:
        if (f := _stat(pid)) is not None:
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ticks / TICK


def own_cpu_s() -> float:
    """CPU-seconds of this process alone (not of the children it reaped: the
    ceilings' processes are counted as theirs)."""
    t = os.times()
    return t.user + t.system


def rss_mb(pids: Iterable[int]) -> float:
    """Resident memory of ``pids`` together, in MB (``/proc/<pid>/statm``). Memory
    they share (PostgreSQL's shared buffers) is counted once per process."""
    pages = 0
    for pid in pids:
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError):
            pass
    return pages * PAGE / 2**20


def pss_mb(pids: Iterable[int]) -> float:
    """Proportional set size of ``pids`` together, in MB: each shared page counted
    as its share, so that a group's total is what it really holds."""
    kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kb += int(line.split()[1])
                    break
        except (OSError, IndexError, ValueError):
            pass
    return kb / 1024


def listener_pid(port: int) -> int | None:
    """The process holding the TCP socket that listens on ``port`` (any address),
    if it is one this user may look into: PostgreSQL's postmaster, RabbitMQ's
    beam.smp. None where the port is forwarded from elsewhere (a container)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.scandir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in inodes:
                        return int(entry.name)
                except OSError:
                    continue
    return None


@dataclass
class Groups:
    """Named groups of root pids; ``kinds`` maps each group to the kind it is
    reported under (``services``, ``postgresql``, ``rabbitmq``, ``ceiling``,
    ``client``...)."""

    roots: dict[str, list[int]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, kind: str, *pids: int) -> None:
        self.roots.setdefault(name, []).extend(pids)
        self.kinds[name] = kind

    def cpu(self) -> dict[str, float]:
        """CPU-seconds of each group now (members found afresh each time)."""
        children = _children_map()
        return {name: cpu_s(tree(roots, children)) for name, roots in self.roots.items()}

    def memory(self) -> dict[str, dict[str, float]]:
        """RSS and PSS (MB) of each group now."""
        children = _children_map()
        return {name: {"rss_mb": rss_mb(members), "pss_mb": pss_mb(members),
                       "processes": len(members)}
                for name, roots in self.roots.items()
                for members in [tree(roots, children)]}


@dataclass
class Usage:
    """What one measure cost: CPU-seconds per group and per kind, over ``ops``."""

    ops: int
    wall_s: float
    by_group: dict[str, float]
    kinds: dict[str, str]

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, seconds in self.by_group.items():
            kind = self.kinds[name]
            out[kind] = out.get(kind, 0.0) + seconds
        return out

    def per_op_ms(self, kinds: Iterable[str] | None = None) -> float:
        """CPU-milliseconds per operation of the given kinds (all but the client's
        if None: what the system, not the load generator, spent)."""
        by_kind = self.by_kind()
        wanted = [k for k in by_kind if k != "client"] if kinds is None else list(kinds)
        return 1000 * sum(by_kind.get(k, 0.0) for k in wanted) / max(self.ops, 1)

    def as_dict(self) -> dict:
        return {"ops": self.ops, "wall_s": self.wall_s, "cpu_s_by_group": self.by_group,
                "cpu_s_by_kind": self.by_kind(),
                "cpu_ms_per_op": {k: 1000 * v / max(self.ops, 1)
                                  for k, v in self.by_kind().items()},
                "cpu_ms_per_op_system": self.per_op_ms()}


class Meter:
    """``with meter.measure() as m: ...; m.done(ops)``: CPU of every group and of
    this process (kind ``client``: the load generator) over the block."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def measure(self) -> _Window:
        return _Window(self.groups)


class _Window:
    def __init__(self, groups: Groups) -> None:
        self._groups = groups
        self.usage: Usage | None = None
        self._ops = 0

    def done(self, ops: int) -> None:
        self._ops = ops

    def __enter__(self) -> _Window:
        import time
        self._t0 = time.perf_counter()
        self._before = {**self._groups.cpu(), "load generator": own_cpu_s()}
        return self

    def __exit__(self, *exc: object) -> None:
        import time
        after = {**self._groups.cpu(), "load generator": own_cpu_s()}
        wall = time.perf_counter() - self._t0
        kinds = {**self._groups.kinds, "load generator": "client"}
        self.usage = Usage(self._ops, wall, {k: after[k] - self._before.get(k, 0.0) for k in after},
                           kinds)


@dataclass
class Measured:
    """One measure: what was done, how fast, at what cost (``extra``: latencies...)."""

    key: str
    label: str
    usage: Usage
    ops_per_s: float
    extra: dict = field(default_factory=dict)

    def cpu_ms(self) -> float:
        """CPU-milliseconds per operation of the system (all but the load generator)."""
        return self.usage.per_op_ms()

    def as_dict(self) -> dict:
        return {"label": self.label, "ops_per_s": self.ops_per_s, **self.usage.as_dict(),
                **self.extra}
