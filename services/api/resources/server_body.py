"""The body of create server (section 4.4.1.6), checked before anything is written:
the server itself, the count of servers (os-multiple-create, 4.4.15) and the
scheduler hints beside it (OS-SCH-HNT, 4.4.10); and the checks of text fields
that other server bodies share (``server_name``, ``admin_pass``, ``check_text``).

Every text field has a length limit, so that nothing the API stores, logs or
hands to another service is unbounded: Nova's where it had one (names, key
names and availability zones: 255 characters), 255 where it had none. NUL
characters never reach this module (``representation.bodies`` refuses them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, NamedTuple
from uuid import UUID

import msgspec

from services.api.resources.common import parse_digits
from shared.errors import BadRequest, QuotaExceeded

# The defaults of section 4.4.1.4; create passes the project's own limits
# (services.api.quotas.absolute_limits). -1 is unlimited.
MAX_SERVER_META = 50
MAX_PERSONALITY = 5
MAX_PERSONALITY_SIZE = 10240
MAX_USER_DATA = 65535

# min_count/max_count beyond this are refused as not sane, whatever the quota.
MAX_COUNT_VALUE = 2**31 - 1

MAX_NAME_LENGTH = 255
"""Longest server name, ``key_name``, ``availability_zone`` and security group
name, in characters (Nova's ``parameter_types.name``)."""

MAX_ADMIN_PASS_LENGTH = 255
"""Longest ``adminPass`` (rebuild, rescue). Nova set no limit, as it never stored
the password; it still travels to the agent and into the guest, and no
password a person types or a tool generates comes near 255 characters."""

MAX_HINT_LENGTH = 255
"""Longest scheduler hint name, and longest text anywhere in a hint's value.
Nova bounded only the hints it knew; the others are passed through to the
scheduler and logged, and the ones it knows (server UUIDs, cell names, IP
addresses, CIDRs) all fit."""

_Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]


class PersonalityFile(msgspec.Struct, kw_only=True):
    path: str
    contents: str = ""


class NamedRef(msgspec.Struct, kw_only=True):
    name: _Name


class NetworkRef(msgspec.Struct, kw_only=True):
    uuid: str | None = None
    fixed_ip: str | None = None
    port: str | None = None


class CreateServerBody(msgspec.Struct, kw_only=True):
    name: str
    imageRef: str | int = ""
    """Empty when the server boots from a volume (``server_volumes``)."""
    flavorRef: str | int
    metadata: dict[str, str] = {}
    security_groups: list[NamedRef] = []
    availability_zone: _Name | None = None
    personality: list[PersonalityFile] = []
    user_data: str | None = None
    config_drive: bool | str = False
    key_name: _Name | None = None
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
    req.name = server_name(req.name)
    check_metadata(req.metadata, max_meta)
    return req


def check_text(value: object, field: str, max_len: int) -> str:
    """``value`` if it is a string of at most ``max_len`` characters; else 400 badRequest.

    Args:
        field: the body's name for it, for the message (``adminPass``).
    """
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {field}: it must be a string.")
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field/attribute {field}: it is longer than "
                         f"{max_len} characters.")
    return value


def server_name(value: object) -> str:
    """A server's name (create, rebuild): trimmed, 1 to MAX_NAME_LENGTH characters."""
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"Server name must be a string of 1 to {MAX_NAME_LENGTH} characters, "
                         "not all blank.")
    return name


def admin_pass(value: object) -> str | None:
    """The ``adminPass`` a body gives, None when it gives none (one is generated);
    400 for anything but a string of 1 to MAX_ADMIN_PASS_LENGTH characters."""
    if value is None:
        return None
    password = check_text(value, "adminPass", MAX_ADMIN_PASS_LENGTH)
    if not password:
        raise BadRequest("Invalid input for field/attribute adminPass: it must not be empty.")
    return password


def check_metadata(metadata: dict[str, str], max_items: int = MAX_SERVER_META) -> None:
    if 0 <= max_items < len(metadata):
        raise QuotaExceeded("Quota exceeded for metadata items: "
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
        raise QuotaExceeded("Personality file limit exceeded: "
                            f"{len(files)} files given, at most {max_files} allowed.")
    out = []
    for f in files:
        if not f.path or len(f.path.encode()) > 255:
            raise BadRequest("Personality file path must be 1 to 255 bytes.")
        data = _b64(f.contents, f"Personality content for {f.path} cannot be decoded.")
        if 0 <= max_size < len(data):
            raise QuotaExceeded("Personality file content too long: "
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

# Hints that name servers: one server, or one or more. The list hints are
# conditions, so the servers they name must be the project's (``servers``);
# ``near`` is a preference, which the scheduler drops when its server cannot be
# found (``PlacementRequest.near_placement``), so only its form is checked here.
_ONE_SERVER_HINTS = ("near",)
_SERVER_LIST_HINTS = ("same_host", "different_host")


class SchedulerHints(NamedTuple):
    hints: dict[str, object]
    """What ScheduleBuild carries: ``near`` a server id, ``same_host`` and
    ``different_host`` lists of server ids (canonical UUID text), only the
    keys given; any other hint passed through untouched."""
    servers: tuple[tuple[str, UUID], ...]
    """(hint, server id) for every server ``same_host`` and ``different_host``
    name, to look up in the project (not ``near``'s: see ``_ONE_SERVER_HINTS``)."""


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
        _check_hint(key, value)
        if key in _ONE_SERVER_HINTS:
            items = value if isinstance(value, list) else [value]
            if len(items) != 1:
                raise BadRequest(f"Scheduler hint {key} must name one server UUID.")
            hints[key] = str(_server_uuid(key, items[0]))
        elif key in _SERVER_LIST_HINTS:
            items = value if isinstance(value, list) else [value]
            ids = list(dict.fromkeys(_server_uuid(key, item) for item in items))
            hints[key] = [str(sid) for sid in ids]
            servers.extend((key, sid) for sid in ids)
        else:
            hints[key] = value
    return SchedulerHints(hints, tuple(servers))


def _check_hint(key: str, value: object) -> None:
    """The hint's name and every text in its value fit MAX_HINT_LENGTH."""
    if len(key) > MAX_HINT_LENGTH:
        raise BadRequest(f"Scheduler hint names are at most {MAX_HINT_LENGTH} characters.")
    # A body nests at most representation.bodies.MAX_DEPTH levels: no deep recursion.
    if isinstance(value, dict):
        for name, item in value.items():
            _check_hint(key, name)
            _check_hint(key, item)
    elif isinstance(value, list):
        for item in value:
            _check_hint(key, item)
    elif isinstance(value, str) and len(value) > MAX_HINT_LENGTH:
        raise BadRequest(f"Scheduler hint {key}: its values are at most {MAX_HINT_LENGTH} "
                         "characters.")


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
