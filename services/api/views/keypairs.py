"""Keypair views (section 4.4.9): name, public key and fingerprint; create adds
``user_id`` and, for a generated key, the private key (shown that once only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def keypair(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "public_key": row["public_key"],
            "fingerprint": row["fingerprint"]}


def created(row: Mapping[str, Any], private_key: str | None) -> dict[str, Any]:
    view = keypair(row) | {"user_id": row["user_id"]}
    if private_key is not None:
        view["private_key"] = private_key
    return view
