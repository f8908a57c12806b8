"""The fake driver's simulated host: its guests' state, kept apart from the agent.

``FakeHost`` (``host``) is the hypervisor's side: what the driver and an operator
do to guests. ``store`` is the one home of the on-disk format under
``state_dir`` and of what it guarantees. ``python -m
services.compute_agent.drivers.fake_host`` (``__main__``) is the operator's
``virsh``: list, stop, crash, start, destroy and create guests out of band.
"""

from services.compute_agent.drivers.fake_host.host import FakeHost
from services.compute_agent.drivers.fake_host.store import GuestRecord

__all__ = ["FakeHost", "GuestRecord"]
