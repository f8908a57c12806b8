"""Password hashing: scrypt from the standard library, one random salt per password.

A hash is stored as ``scrypt$<n>$<r>$<p>$<salt>$<digest>`` (salt and digest in
unpadded URL-safe base64), so the cost can be raised later without breaking
existing hashes: :func:`verify_password` reads the parameters from the hash.

Hashing costs tens of milliseconds of CPU on purpose; call the ``*_async``
variants from the event loop so that one hash does not stall every request.
They serve the management commands and bootstrap; logins go through
``password_gate``, which also bounds how many checks run and wait.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

# 2**14 * 8 * 128 bytes = 16 MiB of memory per hash, about 50 ms on one core.
# OWASP's minimum for scrypt is n=2**17, r=8, p=1; this is a development cloud
# whose API also has to log users in quickly under load, so it takes a lower
# cost. Raising N only affects hashes made from then on.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_DIGEST_BYTES = 32
_MAX_MEMORY = 2**26  # 64 MiB: refuses absurd parameters from a tampered row

# Each hash holds 16 MiB for its duration; hashes queue here instead of running
# dozens at once in the default executor. More threads than cores would only
# add memory, since scrypt releases the GIL and is CPU-bound.
_HASHERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                              thread_name_prefix="scrypt")

# A hash of a random password, verified against when the user does not exist so
# that an unknown user name costs as long as a wrong password.
_DUMMY_HASH: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * n + 2**20, dklen=_DIGEST_BYTES)


def hash_password(password: str) -> str:
    """Return the encoded scrypt hash of ``password`` with a fresh random salt.

    Raises:
        ValueError: the password holds a NUL character (see :func:`verify_password`).
    """
    if "\x00" in password:
        raise ValueError("a password cannot contain NUL characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``; False for a malformed hash too.

    A password holding NUL never matches: scrypt's HMAC pads short keys with
    zero bytes, so ``"pw"`` and ``"pw\\0"`` would otherwise both match.
    """
    if "\x00" in password:
        return False
    try:
        scheme, n_s, r_s, p_s, salt_s, digest_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = _unb64(salt_s), _unb64(digest_s)
    except ValueError:
        return False
    if (scheme != "scrypt" or not (1 < n and 0 < r <= 32 and 0 < p <= 4)
            or n & (n - 1) or 128 * r * n > _MAX_MEMORY):
        return False
    try:
        actual = _scrypt(password, salt, n, r, p)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def burn_verification(password: str) -> None:
    """Spend the time a real verification takes; used when there is no user."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    verify_password(password, _DUMMY_HASH)


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in one of a few dedicated worker threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHERS, hash_password, password)


async def verify_password_async(password: str, encoded: str | None) -> bool:
    """:func:`verify_password` in a worker thread; ``encoded=None`` (no such user)
    takes as long and returns False."""
    loop = asyncio.get_running_loop()
    if encoded is None:
        await loop.run_in_executor(_HASHERS, burn_verification, password)
        return False
    return await loop.run_in_executor(_HASHERS, verify_password, password, encoded)
