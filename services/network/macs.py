"""Random MAC addresses under the configured prefix (pure, no I/O).

Uniqueness is not decided here: ``ports.mac`` is UNIQUE, and the port insert
draws a new address when it meets a taken one (see ``services.network.ports``).
"""

from __future__ import annotations

import re
import secrets

_OCTET = re.compile(r"^[0-9a-f]{2}$")


def parse_prefix(prefix: str) -> bytes:
    """The octets of a prefix like ``fa:16:3e``; ValueError if it is not 0-5 hex octets
    or would make multicast addresses."""
    text = prefix.strip().lower()
    parts = text.split(":") if text else []
    if len(parts) > 5 or not all(_OCTET.match(p) for p in parts):
        raise ValueError(f"MAC prefix must be 0 to 5 ':'-separated hex octets, got {prefix!r}")
    octets = bytes(int(p, 16) for p in parts)
    if octets and octets[0] & 0x01:
        raise ValueError(f"MAC prefix {prefix!r} has the multicast bit set")
    return octets


def random_mac(prefix: str) -> str:
    """A MAC ``xx:xx:xx:xx:xx:xx`` (lower case) starting with ``prefix``, rest random.

    With an empty prefix the first octet is made unicast and locally administered.
    """
    head = parse_prefix(prefix)
    tail = bytearray(secrets.token_bytes(6 - len(head)))
    if not head:
        tail[0] = (tail[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in head + bytes(tail))
