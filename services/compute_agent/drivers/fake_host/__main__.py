"""``python -m services.compute_agent.drivers.fake_host``: the fake host's ``virsh``.

It acts on one simulated host's guests behind the control plane's back, as an
operator (or the guest itself) would on a real hypervisor, so that a running
agent, and its reconcile loop, find the host changed under them::

    ... --state-dir DIR --host HOST list
    ... stop SERVER_ID                          the guest shuts itself down: SHUTDOWN
    ... crash SERVER_ID                         its kernel panics: CRASHED
    ... start SERVER_ID                         boot a guest that is not running
    ... destroy SERVER_ID                       the guest vanishes, disk and all
    ... create SERVER_ID --name NAME [--ram-mb N]   a running guest nobody asked for

``--state-dir`` and ``--host`` default to ``NIMBUS_FAKE_STATE_DIR`` and
``NIMBUS_COMPUTE_HOST``, as the agent reads them. Exit status: 0 done, 1 refused
by the host (no such guest, not in a state that allows it), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence

from services.compute_agent.drivers.base import DriverError
from services.compute_agent.drivers.fake_host.host import FakeHost
from services.compute_agent.drivers.fake_host.store import GuestRecord


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.compute_agent.drivers.fake_host",
        description="Act on the fake host's guests out of band, as virsh would.")
    state_dir = os.environ.get("NIMBUS_FAKE_STATE_DIR") or None
    host = os.environ.get("NIMBUS_COMPUTE_HOST") or None
    parser.add_argument("--state-dir", default=state_dir, required=state_dir is None,
                        help="the agents' NIMBUS_FAKE_STATE_DIR")
    parser.add_argument("--host", default=host, required=host is None,
                        help="the agent's host name (NIMBUS_COMPUTE_HOST)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every guest: id, state, RAM, name")
    for name, text in (("stop", "the guest shuts itself down"),
                       ("crash", "the guest's kernel panics"),
                       ("start", "boot a guest that is not running"),
                       ("destroy", "the guest vanishes from the host")):
        commands.add_parser(name, help=text).add_argument("server_id", type=uuid.UUID)
    create = commands.add_parser("create", help="a running guest the control plane does not know")
    create.add_argument("server_id", type=uuid.UUID)
    create.add_argument("--name", required=True)
    create.add_argument("--ram-mb", type=int, default=512)
    return parser


def _row(record: GuestRecord) -> str:
    state = record.power_state.name.lower() + (" (rescued)" if record.rescued else "")
    return f"{record.server_id}  {state:<19} {record.spec.flavor.ram_mb:>7}  {record.spec.name}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.state_dir:
        parser.error("--state-dir is empty: such a host keeps its guests in its agent's memory")
    host = FakeHost(args.state_dir, args.host)
    try:
        if args.command == "list":
            records = [r for r in map(host.guest, host.ids()) if r is not None]
            print(f"{'SERVER_ID':<36}  {'STATE':<19} {'RAM_MB':>7}  NAME")
            for record in sorted(records, key=lambda r: (r.spec.name, str(r.server_id))):
                print(_row(record))
        elif args.command == "create":
            print(_row(host.create(args.server_id, name=args.name, ram_mb=args.ram_mb)))
        elif args.command == "destroy":
            host.destroy(args.server_id)
            print(f"{args.server_id}  destroyed")
        else:
            print(_row(getattr(host, args.command)(args.server_id)))
    except DriverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
