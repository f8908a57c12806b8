"""The hypervisor driver interface the compute agent drives.

Methods take our structs, never database rows. Each docstring states the
post-condition and whether a repeat is harmless; the agent relies on both when a
message is delivered twice. Drivers are chosen by name (``drivers.DRIVERS``),
say what they can do (:class:`Capabilities`, which the API consults before it
accepts an action) and fail with the typed errors below.

Blocking hypervisor calls (libvirt's are) run in threads (``asyncio.to_thread``),
never on the agent's event loop.
"""

from __future__ import annotations

import abc
import re
from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.contracts.compute import BlockDevice, InjectedFile
from shared.image_store import ImageFile, ImageStore
from shared.volume_store import VolumeStore
from shared.states import PowerState

# --- errors ------------------------------------------------------------------------


class DriverError(Exception):
    """The hypervisor refused or failed an operation. The message is worded for
    the user (what was refused, never an exception's text from below); the
    operation ends as its transition says (ERROR, or the state kept)."""

    retryable = False
    """Whether the same call may succeed a moment later (``shared.retry``)."""


class GuestNotFound(DriverError):
    """The host has no guest of that id (it was never made, or it went)."""


class NotSupported(DriverError):
    """This driver cannot do that (see :class:`Capabilities`)."""


class HypervisorUnavailable(DriverError):
    """The hypervisor could not be reached (its connection dropped, it restarts):
    transient, so the agent handles the message again after a backoff."""

    retryable = True


# --- what a driver is given --------------------------------------------------------


class GuestConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the user gave the guest, in one place (spec sections 2.1.5.3-2.1.5.5).

    A real driver writes it to a configuration drive when :attr:`wants_drive`;
    the fake driver keeps it as the guest's disk."""

    hostname: str
    metadata: dict[str, str] = {}
    files: tuple[InjectedFile, ...] = ()
    """Personality files, injected through the config drive."""
    user_data: bytes | None = None
    public_keys: dict[str, str] = {}
    """Key pair name -> public key (OpenSSH format)."""
    admin_pass: str | None = None
    config_drive: bool = False
    """The user asked for a config drive."""

    def rebuilt_from(self, old: GuestConfig) -> GuestConfig:
        """The config after a rebuild: this one (name, password, metadata, files),
        keeping the user data and keys the guest was created with when this has
        none (a rebuild does not change them, and the agent does not keep them)."""
        return msgspec.structs.replace(
            self, user_data=self.user_data if self.user_data is not None else old.user_data,
            public_keys=self.public_keys or old.public_keys,
            config_drive=self.config_drive or old.config_drive)

    @property
    def wants_drive(self) -> bool:
        """A drive is made when asked for, or to carry injected files."""
        return self.config_drive or bool(self.files)


def hostname_for(name: str, server_id: UUID) -> str:
    """The guest's hostname from its display name, as Nova's ``sanitize_hostname``
    makes it: lower case, spaces and underscores as hyphens, nothing but letters,
    digits, hyphens and dots, at most 63 characters; ``server-<id>`` when nothing
    is left."""
    host = re.sub(r"[ _]", "-", name.lower())
    host = re.sub(r"[^a-z0-9.-]", "", host)[:63].strip("-.")
    return host or f"server-{server_id}"


class GuestSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a driver needs to create one guest."""

    server_id: UUID
    name: str
    flavor: FlavorSpec
    image: ImageSpec | None
    """None when the guest boots from the volume in ``volumes`` marked ``boot``."""
    ports: tuple[Port, ...] = ()
    config: GuestConfig
    volumes: tuple[BlockDevice, ...] = ()
    """Volumes attached from the start; the ``boot`` one is the root disk (in place
    of a disk made from ``image``), and it outlives the guest."""

    @property
    def boot_volume(self) -> BlockDevice | None:
        return next((v for v in self.volumes if v.boot), None)


class GuestInfo(msgspec.Struct, frozen=True, kw_only=True):
    server_id: UUID
    power_state: PowerState
    ram_mb: int
    vcpus: int
    rescued: bool = False
    """Running from a rescue image (see ``rescue``)."""


class HostResources(msgspec.Struct, frozen=True, kw_only=True):
    """The capacity of the host the driver runs guests on."""

    ram_mb: int
    disk_gb: int
    vcpus: int


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a driver can do beyond create, delete, power and reboot. The agent
    reports it with its host; the API answers an action the server's host cannot
    do with 501 notImplemented instead of accepting it."""

    # Each field is consulted by the API (``server_tasks.NEEDS``): a declaration
    # nobody reads would only be a promise.
    rescue: bool = False
    snapshot: bool = False
    vnc_console: bool = False
    console_output: bool = False
    volumes: bool = False
    """Attach and detach volumes, and boot from one."""


class DriverContext(msgspec.Struct, frozen=True, kw_only=True):
    """What the agent gives every driver it makes, beside its settings section."""

    host: str
    image_store: ImageStore
    shutdown_timeout_s: float = 60.0
    """How long a soft reboot waits for the guest OS to shut down before the power
    is cut (``NIMBUS_COMPUTE_SHUTDOWN_TIMEOUT_S``; a stop passes it to ``power_off``)."""
    volume_store: VolumeStore | None = None
    """Where ``file`` volumes are (``NIMBUS_VOLUMES_DIR``), shared with the volume service."""


# --- the interface -----------------------------------------------------------------


class HypervisorDriver(abc.ABC):
    name: str
    """The name it is chosen by (``NIMBUS_COMPUTE_DRIVER``)."""
    capabilities: Capabilities

    async def init_host(self) -> None:
        """Connect to the hypervisor and prepare the host; called once before the
        agent serves its queue. Raise DriverError to refuse to start."""

    async def cleanup(self) -> None:
        """Let go of the hypervisor (connections, threads) when the agent stops.
        Guests keep running: they belong to the host, not to the agent."""

    @abc.abstractmethod
    async def host_resources(self) -> HostResources:
        """The host's total capacity (not what is free)."""

    @abc.abstractmethod
    async def spawn(self, spec: GuestSpec) -> None:
        """Create and start the guest. On return it is RUNNING; on failure
        (DriverError) nothing of it remains. Spawning a guest that already runs
        is a no-op."""

    @abc.abstractmethod
    async def destroy(self, server_id: UUID) -> None:
        """Stop and remove the guest and every file of it; return quietly if it is
        already gone."""

    @abc.abstractmethod
    async def get_info(self, server_id: UUID) -> GuestInfo | None:
        """The guest's state as the hypervisor sees it; None if it has no such guest."""

    @abc.abstractmethod
    async def list_instances(self) -> list[UUID]:
        """Ids of every guest the hypervisor holds for this host."""

    @abc.abstractmethod
    async def console_output(self, server_id: UUID) -> str:
        """The guest's console log as recorded so far (GuestNotFound if no guest)."""

    # --- actions on a running guest ---

    @abc.abstractmethod
    async def reboot(self, server_id: UUID, *, hard: bool) -> None:
        """Restart the guest: it goes SHUTDOWN, then boots again and is RUNNING on
        return. SOFT asks the guest OS (a guest that is not running, or does not
        answer in time, gets a HARD one instead); HARD power-cycles, and also
        starts a stopped guest. Safe to repeat (one more reboot). GuestNotFound
        if there is no such guest."""

    @abc.abstractmethod
    async def power_off(self, server_id: UUID, *, timeout_s: float) -> None:
        """Shut the guest down: ask its OS first and wait up to ``timeout_s`` for it
        to stop, then cut the power (0: at once). On return it is SHUTDOWN.
        Idempotent (a guest already off is left alone). GuestNotFound if there is
        no such guest."""

    @abc.abstractmethod
    async def power_on(self, server_id: UUID) -> None:
        """Boot a stopped guest; on return it is RUNNING. Idempotent (a running guest
        is left alone). GuestNotFound if there is no such guest."""

    async def rescue(self, server_id: UUID, *, admin_pass: str, image: ImageSpec | None) -> None:
        """Boot the guest from ``image`` (None: the guest's own image) with
        ``admin_pass`` as its root password and the guest's own disk attached; on
        return it is RUNNING and ``get_info`` says ``rescued``. Idempotent (a guest
        already rescued is left alone). GuestNotFound if there is no such guest;
        NotSupported unless ``capabilities.rescue``."""
        raise NotSupported(f"The {self.name} hypervisor cannot rescue a server.")

    async def unrescue(self, server_id: UUID) -> None:
        """Boot the guest from its own disk again; on return it is RUNNING and not
        ``rescued``. Idempotent. GuestNotFound if there is no such guest."""
        raise NotSupported(f"The {self.name} hypervisor cannot rescue a server.")

    @abc.abstractmethod
    async def rebuild(self, spec: GuestSpec) -> None:
        """Re-create the guest's disk from ``spec.image`` with ``spec``'s name and
        config (same ports, same flavor) and boot it: RUNNING on return. User
        data and the key pair stay those the guest was created with when
        ``spec.config`` has none. A guest the driver does not know is created
        from ``spec``. DriverError on failure (the agent then puts the server in
        ERROR)."""

    async def snapshot(self, server_id: UUID, image_id: UUID) -> ImageFile:
        """Copy the guest's root disk (running or stopped; the guest is unchanged)
        into the image store as the file of image ``image_id`` and say what was
        written. GuestNotFound if there is no such guest; DriverError if the copy
        fails (nothing is left in the store then). Safe to repeat (the file is
        written again). NotSupported unless ``capabilities.snapshot``."""
        raise NotSupported(f"The {self.name} hypervisor cannot snapshot a server.")

    async def attach_volume(self, server_id: UUID, device: BlockDevice) -> None:
        """Attach the volume to the guest as ``device.device`` (running: hot-plugged,
        the guest sees a new disk; stopped: it has it at its next boot). The volume's
        bits are the volume service's: the driver only points the guest at them.
        Idempotent (a volume already attached is left alone). GuestNotFound if there
        is no such guest; DriverError if the hypervisor refuses (nothing changed);
        NotSupported unless ``capabilities.volumes``."""
        raise NotSupported(f"The {self.name} hypervisor cannot attach a volume.")

    async def detach_volume(self, server_id: UUID, volume_id: UUID) -> None:
        """Take the volume off the guest (running: the guest is asked to release the
        disk, and this returns once it has). Idempotent (a volume not attached is
        fine). GuestNotFound if there is no such guest; DriverError if the guest
        would not let go (the volume stays attached); NotSupported unless
        ``capabilities.volumes``."""
        raise NotSupported(f"The {self.name} hypervisor cannot detach a volume.")

    async def vnc_endpoint(self, server_id: UUID) -> tuple[str, int] | None:
        """``(host, port)`` where the running guest's VNC server listens, reachable from
        the console proxy; None if the guest is unknown, not running, or the driver
        has no VNC. Safe to repeat (the same endpoint while the guest runs)."""
        return None
