"""SSH keys for keypairs (section 4.4.9): generate, check an imported public key,
fingerprint. Pure functions over the ``cryptography`` library.

* A generated key is RSA 2048, as Nova made them: the private key in PEM
  ("-----BEGIN RSA PRIVATE KEY-----", the spec's example), the public key in
  OpenSSH format with a comment.
* An imported key must be one OpenSSH public key line (``ssh-rsa``,
  ``ssh-ed25519``, ``ecdsa-sha2-nistp256/384/521``; an optional comment) whose
  blob really parses as a key of the named type.
* The fingerprint is Nova's: the MD5 of the key blob as colon-separated hex
  (``57:64:ca:...``), what ``ssh-keygen -l -E md5`` prints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import NamedTuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521")
# Far above any real key (a 16384-bit RSA key is under 3 KiB in this format).
MAX_PUBLIC_KEY_LENGTH = 16384
RSA_BITS = 2048
COMMENT = "Generated-by-Nimbus"


class InvalidPublicKey(ValueError):
    """The text is not an OpenSSH public key we take; the message says why."""


class GeneratedKey(NamedTuple):
    private_key: str
    public_key: str
    fingerprint: str


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint of an OpenSSH public key line (checked by ``check_public_key``)."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_public_key(text: str) -> str:
    """The public key line, trimmed, if it is a valid OpenSSH public key.

    Raises:
        InvalidPublicKey: anything else (empty, several lines, unknown type, a
            blob that is not base64 or not a key of the named type).
    """
    line = text.strip()
    if not line:
        raise InvalidPublicKey("the public key is empty")
    if len(line) > MAX_PUBLIC_KEY_LENGTH:
        raise InvalidPublicKey(f"the public key is longer than {MAX_PUBLIC_KEY_LENGTH} characters")
    if "\n" in line or "\r" in line:
        raise InvalidPublicKey("the public key must be a single line")
    parts = line.split()
    if len(parts) < 2:
        raise InvalidPublicKey("the public key must be '<type> <base64 key> [comment]'")
    if parts[0] not in KEY_TYPES:
        raise InvalidPublicKey(f"unsupported key type {parts[0][:40]!r}; use one of "
                               + ", ".join(KEY_TYPES))
    try:
        base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPublicKey("the key is not valid base64") from None
    try:
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey(f"the key does not parse as {parts[0]}: {exc}") from None
    return line


def generate() -> GeneratedKey:
    """A new RSA key pair (blocking for some tens of milliseconds: run it in a thread)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    public = f"{public} {COMMENT}"
    return GeneratedKey(private, public, fingerprint(public))
