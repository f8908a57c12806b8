"""The per-agent embedded QEMU driver: its URI and its configuration.

``qemu:///embed?root=DIR`` runs libvirt's QEMU driver inside the agent's process,
keeping its state (definitions, pid files, monitor sockets) under ``DIR``. See the
package docstring for what was measured before choosing it.
"""

from __future__ import annotations

import os
from pathlib import Path

QEMU_CONF = """\
# Written by the nimbus libvirt driver at every start; edits are lost.
# No virtlogd runs for an embedded driver: QEMU writes its logs (and the serial
# console's <log file=...>) itself.
stdio_handler = "file"
# QEMU runs as the agent's own user, and libvirt changes no file's owner: the
# guests' overlays stay readable, the image store's files are never chowned.
user = "+{uid}"
group = "+{gid}"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# The ports this host's guests' VNC servers take (one range per agent on a machine).
remote_display_port_min = {vnc_min}
remote_display_port_max = {vnc_max}
"""


def embed_uri(root: Path) -> str:
    return f"qemu:///embed?root={root}"


def is_embed(uri: str) -> bool:
    return uri.startswith("qemu:///embed")


def prepare_root(root: Path, *, vnc_ports: tuple[int, int] = (5900, 65535)) -> None:
    """Create the embedded driver's root and write its ``etc/qemu.conf`` (blocking)."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    conf = etc / "qemu.conf"
    tmp = conf.with_suffix(".tmp")
    tmp.write_text(QEMU_CONF.format(uid=os.getuid(), gid=os.getgid(), vnc_min=vnc_ports[0],
                                    vnc_max=vnc_ports[1]))
    os.replace(tmp, conf)
