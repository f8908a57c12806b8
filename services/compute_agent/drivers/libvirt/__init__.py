"""The libvirt driver: guests are QEMU virtual machines (``driver``, ``actions``),
described by domain XML built with lxml (``domain``), reached through one
connection whose blocking calls run in threads (``connection``), with disks made
by ``qemu-img`` (``disks``). Importing this package does not import
libvirt-python; ``driver`` does.

Which libvirt: embedded QEMU, one per agent (measured 2026-12-05, libvirt 9.0,
QEMU 7.2, Debian 12, as root)
------------------------------------------------------------------------------
The default URI is ``qemu:///embed?root=<state_dir>/<host>/libvirt``: libvirt's
QEMU driver runs inside the agent's process, its state under that root, so agents
on one machine are separate hypervisors that see only their own guests. Before
choosing it, we measured:

* An agent killed with SIGKILL: its guests' QEMU processes keep running (they are
  not its children's children in any way libvirt tears down). A new process
  opening the same root finds each domain again, state ``running``, reconnects to
  its monitor, and can shut it down or destroy it.
* A clean ``close()`` of the connection (and the process exiting): guests keep
  running, as ``cleanup()`` promises.
* A process keeps its embedded driver for its whole life: after closing root A it
  cannot open root B ("already open with path A"); it can reopen A. One agent is
  one process, so this costs nothing; tests open one root per test process and
  run other agents as child processes.
* Two processes must not open one root at once (``run/qemu/driver.pid`` lock).
* libvirt probes QEMU's capabilities once per process (3.5-4 s on these
  machines): in ``open`` when the root holds domains, else at the first start.
* ``destroy`` racing the reconnect of a just-opened root can report "domain is
  not running" after it killed QEMU: the driver checks ``isActive`` again.
* No virtlogd runs for an embedded driver, so ``<root>/etc/qemu.conf`` sets
  ``stdio_handler = "file"`` (QEMU appends the serial log itself), and QEMU runs
  as the agent's user with no ownership changes (``embed``: otherwise libvirt
  runs it as libvirt-qemu and chowns the image store's files).

So the embedded driver gives what a private daemon would (guests outlive the
agent, a restarted agent adopts them) without a daemon to start, supervise and
stop; a private libvirtd/virtqemud was not needed. Any other URI
(``qemu:///system``, ``test:///default``) can be set in ``NIMBUS_LIBVIRT_URI``.
"""
