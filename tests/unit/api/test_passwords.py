"""Password hashing of the identity service: format, salt, verification, refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest

from services.api.identity import passwords
from services.api.identity.passwords import hash_password, verify_password


def test_hash_has_the_documented_format_and_verifies() -> None:
    encoded = hash_password("s3cret")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", passwords.SCRYPT_N,
                                                passwords.SCRYPT_R, passwords.SCRYPT_P)
    raw_salt = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    raw_digest = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    assert len(raw_salt) == 16
    # It is really scrypt of the password with that salt, not something else.
    assert raw_digest == hashlib.scrypt(b"s3cret", salt=raw_salt, n=int(n), r=int(r),
                                        p=int(p), dklen=32)
    assert "s3cret" not in encoded
    assert verify_password("s3cret", encoded)


def test_each_hash_gets_its_own_salt() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize("attempt", ["s3cre", "s3cret ", "S3cret", "", "s3cret\x00"])
def test_wrong_passwords_fail(attempt: str) -> None:
    assert not verify_password(attempt, hash_password("s3cret"))


def test_nul_in_a_password_is_refused() -> None:
    # HMAC zero-pads short keys, so without this "s3cret\0" would match "s3cret".
    with pytest.raises(ValueError):
        hash_password("pw\x00")


def test_non_ascii_passwords() -> None:
    encoded = hash_password("pässwörd-密码")
    assert verify_password("pässwörd-密码", encoded)
    assert not verify_password("passwörd-密码", encoded)


def test_hash_with_other_parameters_still_verifies() -> None:
    # Hashes made before a cost change keep working: parameters come from the hash.
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"old", salt=salt, n=2**10, r=4, p=1, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    encoded = f"scrypt${2**10}$4$1${b64(salt)}${b64(digest)}"
    assert verify_password("old", encoded)
    assert not verify_password("new", encoded)


@pytest.mark.parametrize("encoded", [
    "", "demo", "plain$text", "bcrypt$16384$8$1$c2FsdA$ZGlnZXN0",
    "scrypt$x$8$1$c2FsdA$ZGlnZXN0", "scrypt$16384$8$1$c2FsdA",
    "scrypt$1$8$1$c2FsdA$ZGlnZXN0",            # n too small
    f"scrypt${2**30}$8$1$c2FsdA$ZGlnZXN0",    # n absurd: refused, not attempted
    "scrypt$16384$8$1$!!!$ZGlnZXN0",
    "scrypt$1000$8$1$c2FsdA$ZGlnZXN0",        # n not a power of two
    "scrypt$16384$64$1$c2FsdA$ZGlnZXN0",      # r absurd
    f"scrypt${2**20}$8$1$c2FsdA$ZGlnZXN0",    # over 64 MiB
])
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_password("demo", encoded)


async def test_async_variants_and_missing_user() -> None:
    encoded = await passwords.hash_password_async("pw")
    assert await passwords.verify_password_async("pw", encoded)
    assert not await passwords.verify_password_async("pw", None)
