"""The body of create server (section 4.4.1.6), checked before anything is written."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from shared.errors import BadRequest, OverLimit

# The defaults of section 4.4.1.4 (per-project quotas arrive with the quota issue).
MAX_SERVER_META = 50
MAX_PERSONALITY = 5
MAX_PERSONALITY_SIZE = 10240
MAX_USER_DATA = 65535


class PersonalityFile(msgspec.Struct, kw_only=True):
    path: str
    contents: str = ""


class NamedRef(msgspec.Struct, kw_only=True):
    name: str


class NetworkRef(msgspec.Struct, kw_only=True):
    uuid: str | None = None
    fixed_ip: str | None = None
    port: str | None = None


class CreateServerBody(msgspec.Struct, kw_only=True):
    name: str
    imageRef: str | int
    flavorRef: str | int
    metadata: dict[str, str] = {}
    security_groups: list[NamedRef] = []
    availability_zone: str | None = None
    personality: list[PersonalityFile] = []
    user_data: str | None = None
    config_drive: bool | str = False
    key_name: str | None = None
    networks: list[NetworkRef] = []
    min_count: int | str = 1
    max_count: int | str | None = None


class DecodedFile(msgspec.Struct, frozen=True):
    path: str
    contents: bytes


def parse(body: dict[str, Any]) -> CreateServerBody:
    server = body.get("server")
    if not isinstance(server, dict):
        raise BadRequest("The request body must hold a 'server' object.")
    try:
        req = msgspec.convert(server, CreateServerBody, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid input for field/attribute server: {exc}") from None
    name = req.name.strip()
    if not name or len(name) > 255:
        raise BadRequest("Server name must be a string of 1 to 255 characters, not all blank.")
    _check_metadata(req.metadata)
    return req


def _check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > MAX_SERVER_META:
        raise OverLimit("Quota exceeded for metadata items: "
                        f"{len(metadata)} given, at most {MAX_SERVER_META} allowed.")
    for key, value in metadata.items():
        if not key:
            raise BadRequest("Metadata keys must not be empty.")
        if len(key.encode()) > 255 or len(value.encode()) > 255:
            raise BadRequest("Metadata keys and values are at most 255 bytes each.")


def config_drive(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise BadRequest(f"Invalid config_drive value {value!r}: use true or false.")


def user_data(value: str | None) -> bytes | None:
    if value is None:
        return None
    data = _b64(value, "Userdata content cannot be decoded.")
    if len(data) > MAX_USER_DATA:
        raise BadRequest(f"User data is {len(data)} bytes; at most {MAX_USER_DATA} are allowed.")
    return data


def personality(files: list[PersonalityFile]) -> tuple[DecodedFile, ...]:
    if len(files) > MAX_PERSONALITY:
        raise OverLimit("Personality file limit exceeded: "
                        f"{len(files)} files given, at most {MAX_PERSONALITY} allowed.")
    out = []
    for f in files:
        if not f.path or len(f.path.encode()) > 255:
            raise BadRequest("Personality file path must be 1 to 255 bytes.")
        data = _b64(f.contents, f"Personality content for {f.path} cannot be decoded.")
        if len(data) > MAX_PERSONALITY_SIZE:
            raise OverLimit("Personality file content too long: "
                            f"{f.path} is {len(data)} bytes, at most {MAX_PERSONALITY_SIZE}.")
        out.append(DecodedFile(f.path, data))
    return tuple(out)


def _b64(text: str, message: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(message) from None
