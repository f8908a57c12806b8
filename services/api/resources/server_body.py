"""The body of create server (section 4.4.1.6), checked before anything is written:
the server itself, the count of servers (os-multiple-create, 4.4.15) and the
scheduler hints beside it (OS-SCH-HNT, 4.4.10)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from services.api.resources.common import parse_digits
from shared.errors import BadRequest, OverLimit

# The defaults of section 4.4.1.4; create passes the project's own limits
# (services.api.quotas.absolute_limits). -1 is unlimited.
MAX_SERVER_META = 50
MAX_PERSONALITY = 5
MAX_PERSONALITY_SIZE = 10240
MAX_USER_DATA = 65535

# min_count/max_count beyond this are refused as not sane, whatever the quota.
MAX_COUNT_VALUE = 2**31 - 1


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
    # JSON ints or strings, XML strings: checked by counts().
    min_count: Any = 1
    max_count: Any = None


class DecodedFile(msgspec.Struct, frozen=True):
    path: str
    contents: bytes


def parse(body: dict[str, Any], *, max_meta: int = MAX_SERVER_META) -> CreateServerBody:
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
    check_metadata(req.metadata, max_meta)
    return req


def check_metadata(metadata: dict[str, str], max_items: int = MAX_SERVER_META) -> None:
    if 0 <= max_items < len(metadata):
        raise OverLimit("Quota exceeded for metadata items: "
                        f"{len(metadata)} given, at most {max_items} allowed.")
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


def personality(files: list[PersonalityFile], *, max_files: int = MAX_PERSONALITY,
                max_size: int = MAX_PERSONALITY_SIZE) -> tuple[DecodedFile, ...]:
    if 0 <= max_files < len(files):
        raise OverLimit("Personality file limit exceeded: "
                        f"{len(files)} files given, at most {max_files} allowed.")
    out = []
    for f in files:
        if not f.path or len(f.path.encode()) > 255:
            raise BadRequest("Personality file path must be 1 to 255 bytes.")
        data = _b64(f.contents, f"Personality content for {f.path} cannot be decoded.")
        if 0 <= max_size < len(data):
            raise OverLimit("Personality file content too long: "
                            f"{f.path} is {len(data)} bytes, at most {max_size}.")
        out.append(DecodedFile(f.path, data))
    return tuple(out)


def _b64(text: str, message: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(message) from None


# ---- os-multiple-create ---------------------------------------------------

def counts(req: CreateServerBody) -> tuple[int, int]:
    """``(min_count, max_count)``: positive integers, min <= max; max defaults to min.

    JSON may give ints or strings of digits, XML gives strings. Nova's messages.
    """
    low = _count(req.min_count, "min_count")
    high = low if req.max_count is None else _count(req.max_count, "max_count")
    if low > high:
        raise BadRequest("min_count must be <= max_count")
    return low, high


def _count(value: object, name: str) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        number = parse_digits(text.removeprefix("+"), ceiling=MAX_COUNT_VALUE + 1)
    if number is None:
        raise BadRequest(f"{name} must be an integer")
    if number < 1:
        raise BadRequest(f"{name} must be >= 1")
    if number > MAX_COUNT_VALUE:
        raise BadRequest(f"{name} must be <= {MAX_COUNT_VALUE}")
    return number


# ---- OS-SCH-HNT -------------------------------------------------------------

# Beside "server", as in section 4.4.10 (the XML reader moves them there too).
# "os:scheduler_hints" is the legacy spelling Nova also read, and Create
# Server's parameter list (4.4.1.6) spells it "OS-SCH-HINTS:scheduler_hints"
# where 4.4.10's examples and the extension list say OS-SCH-HNT: all three are
# read, merged in this order, so the examples' spelling wins on a clash.
HINTS_KEYS = ("os:scheduler_hints", "OS-SCH-HINTS:scheduler_hints", "OS-SCH-HNT:scheduler_hints")

# Hints that name servers of the project: one server, or one or more.
_ONE_SERVER_HINTS = ("near",)
_SERVER_LIST_HINTS = ("same_host", "different_host")


class SchedulerHints(NamedTuple):
    hints: dict[str, object]
    """What ScheduleBuild carries: ``near`` a server id, ``same_host`` and
    ``different_host`` lists of server ids (canonical UUID text), only the
    keys given; any other hint passed through untouched."""
    servers: tuple[tuple[str, UUID], ...]
    """(hint, server id) for every server named, to look up in the project."""


def scheduler_hints(body: dict[str, Any]) -> SchedulerHints:
    """The hints beside ``server`` in a create body, normalised."""
    raw: dict[str, object] = {}
    for key in HINTS_KEYS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise BadRequest("Malformed scheduler_hints attribute")
        raw.update(value)
    hints: dict[str, object] = {}
    servers: list[tuple[str, UUID]] = []
    for key, value in raw.items():
        if key in _ONE_SERVER_HINTS:
            items = value if isinstance(value, list) else [value]
            if len(items) != 1:
                raise BadRequest(f"Scheduler hint {key} must name one server UUID.")
            sid = _server_uuid(key, items[0])
            hints[key] = str(sid)
            servers.append((key, sid))
        elif key in _SERVER_LIST_HINTS:
            items = value if isinstance(value, list) else [value]
            ids = list(dict.fromkeys(_server_uuid(key, item) for item in items))
            hints[key] = [str(sid) for sid in ids]
            servers.extend((key, sid) for sid in ids)
        else:
            hints[key] = value
    return SchedulerHints(hints, tuple(servers))


def _server_uuid(hint: str, value: object) -> UUID:
    sid = _as_uuid(value)
    if sid is None:
        raise BadRequest(f"Scheduler hint {hint}: {value!r} is not a server UUID.")
    return sid


def _as_uuid(value: object) -> UUID | None:
    try:
        return UUID(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None
