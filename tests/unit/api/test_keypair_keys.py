"""Keypair keys (section 4.4.9): generated keys, imported keys checked, fingerprints."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from services.api import keypair_keys as keys

# The keys and fingerprints of the spec's examples (4.4.9.1, 4.4.9.2).
SPEC_KEYS = [
    (("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQChJO5vnbzIRU45LFdm5ohdFtIDQo1jPB1xSnWu2vJtyw5wGFjoc"
     "lpuFLstPMRDixloNTh36ff3XnW6Nb4CTpm5Vwz0V6Im2q56vTbS246Lw0+3fDSrnmwFkuJ7rqI5AKZkN4zJg/iJd"
     "suJ768K7yVzwMHP/FWy6bUdRZm5ETjM2w== \n"), "d3:e3:5f:26:dc:30:fc:04:57:91:ba:c0:1c:f8:8d:cd"),
    (("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDZcOCJGRF2REub4+j5Y6LnF7Lk4xyvpdeqAEZYRJe8lC0YOhkF9"
     "PxOAQnSgRuAvcmFiff9E1Dt9yLCSlU40zRClLEMwchG4S51y4JI/mbMwppWKYxgPnIa9rHSIccEtZbhBU1MkwpUHe"
     "RcZE+b60y5xXiYSmVacmtwDZ89qf6TvQ== \n"), "76:e3:b7:ca:95:91:fb:86:f7:fe:5d:d4:11:4d:77:65"),
    (("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDRhFDIz1RJDgUW2tTRTZpJpbJyQbrUy586balui6Hj3g5I0Qogw"
     "42SRXr4EpM8S26M28OsfI3nfxPXQnJz41oUxutBrxaOo0wySinWE7imaDL7i4YE7pj8X3tPTDNzmmPI/VWheS97Gw"
     "ZcTdl3sI/wy4Fm/DOqU/DhpxmgfhKyOuhI65dNRglJN1RqQ6jc8i2egqAU5ZvDL1D9lBYjsKwwFtQXRU80DncbPdV"
     "tAITeR9X4CGsHKqTSAMbELfa4NZyX0y3AgYvJq9DpK1ySc5Y0f+iTuqvQvdsB69uTB8/n24ThV9GpiguashYlrWKc"
     "BKIxNcpEdg+Tla0zOPVro16x roland.hochmuth@hp.com"),
     "57:64:ca:c3:83:25:69:19:03:6f:d2:66:83:d6:6e:20"),
]


def _openssh(private_key) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()


def _ssh_keygen_md5(tmp_path, public_key: str) -> str | None:
    """What ``ssh-keygen -l -E md5`` says, or None without ssh-keygen."""
    if shutil.which("ssh-keygen") is None:
        return None
    path = tmp_path / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1].removeprefix("MD5:")


@pytest.mark.parametrize(("public_key", "expected"), SPEC_KEYS)
def test_fingerprints_of_the_spec_examples(public_key: str, expected: str) -> None:
    assert keys.fingerprint(keys.check_public_key(public_key)) == expected


def test_check_trims_the_line() -> None:
    assert keys.check_public_key(SPEC_KEYS[0][0]) == SPEC_KEYS[0][0].strip()


def test_generated_key_is_rsa_2048_with_matching_halves(tmp_path) -> None:
    made = keys.generate()
    assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(made.private_key.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert made.public_key.startswith(_openssh(private) + " ")
    assert keys.check_public_key(made.public_key) == made.public_key
    assert made.fingerprint == keys.fingerprint(made.public_key)
    assert len(made.fingerprint.split(":")) == 16
    by_ssh_keygen = _ssh_keygen_md5(tmp_path, made.public_key)
    if by_ssh_keygen is not None:
        assert made.fingerprint == by_ssh_keygen
    assert keys.generate().public_key != made.public_key


@pytest.mark.parametrize("private", [
    ed25519.Ed25519PrivateKey.generate(),
    ec.generate_private_key(ec.SECP256R1()),
    ec.generate_private_key(ec.SECP384R1()),
    ec.generate_private_key(ec.SECP521R1()),
    rsa.generate_private_key(public_exponent=65537, key_size=1024),
], ids=["ed25519", "nistp256", "nistp384", "nistp521", "rsa1024"])
def test_imports_ed25519_ecdsa_and_rsa_keys(private, tmp_path) -> None:
    line = _openssh(private) + " me@laptop"
    assert keys.check_public_key(line + "\n") == line
    by_ssh_keygen = _ssh_keygen_md5(tmp_path, line)
    if by_ssh_keygen is not None:
        assert keys.fingerprint(line) == by_ssh_keygen


_RSA = SPEC_KEYS[0][0].strip()
_ED25519 = _openssh(ed25519.Ed25519PrivateKey.generate())


@pytest.mark.parametrize("text", [
    "",
    "   \n",
    "ssh-rsa",
    "not a key at all",
    "ssh-dss AAAAB3NzaC1kc3MAAACBAP",                       # a type we do not take
    "ssh-rsa AAAA$$$notbase64 x@y",
    "ssh-rsa " + _RSA.split()[1][:-20] + " x@y",            # a truncated blob
    "ssh-ed25519 " + _RSA.split()[1] + " x@y",              # the blob is another type's
    "ssh-rsa " + _ED25519.split()[1],
    _RSA + "\n" + _RSA,                                     # two lines
    "ssh-rsa " + "QUFB" * 5000,                             # far too long
], ids=["empty", "blank", "type-only", "prose", "dss", "bad-base64", "truncated",
        "type-mismatch", "type-mismatch-2", "two-lines", "too-long"])
def test_malformed_public_keys_are_refused(text: str) -> None:
    with pytest.raises(keys.InvalidPublicKey):
        keys.check_public_key(text)
