"""The create-server body's limits, and the text checks other server bodies share."""

from __future__ import annotations

import uuid

import pytest

from services.api.resources import server_body as body
from services.api.resources.common import parse_digits
from shared.errors import BadRequest

IMAGE = "2f1e4f8e-4f5e-4c53-9a59-3b3c3c6f0c11"


def create(**fields: object) -> dict:
    return {"server": {"name": "s", "imageRef": IMAGE, "flavorRef": "100", **fields}}


@pytest.mark.parametrize(("text", "ceiling", "want"), [
    ("0", 10, 0), (" 7 ", 10, 7), ("007", 10, 7), ("11", 10, 10), ("9" * 5000, 10, 10),
    ("0" * 5000 + "3", 10, 3), ("9" * 5000, 2**63, 2**63), (str(2**63 - 1), 2**63, 2**63 - 1),
])
def test_parse_digits(text: str, ceiling: int, want: int) -> None:
    assert parse_digits(text, ceiling=ceiling) == want


@pytest.mark.parametrize("text", ["", " ", "-1", "+1", "1.0", "1e3", "0x1", "\u0663", "1 2"])
def test_parse_digits_refuses_what_is_not_digits(text: str) -> None:
    assert parse_digits(text, ceiling=10) is None


@pytest.mark.parametrize(("min_count", "max_count", "want"), [
    (1, None, (1, 1)), ("2", "3", (2, 3)), (" +2 ", 5, (2, 5)), ("0" * 5000 + "1", 1, (1, 1)),
])
def test_counts(min_count: object, max_count: object, want: tuple[int, int]) -> None:
    req = body.parse(create(min_count=min_count, max_count=max_count))
    assert body.counts(req) == want


@pytest.mark.parametrize(("field", "value", "message"), [
    ("min_count", "9" * 5000, "min_count must be <= 2147483647"),
    ("max_count", "9" * 5000, "max_count must be <= 2147483647"),
    ("min_count", 10**40, "min_count must be <= 2147483647"),
    ("min_count", "1" + "0" * 4400, "min_count must be <= 2147483647"),
    ("min_count", "-" + "9" * 5000, "min_count must be an integer"),
    ("min_count", [1], "min_count must be an integer"),
    ("max_count", "0", "max_count must be >= 1"),
])
def test_bad_counts(field: str, value: object, message: str) -> None:
    req = body.parse(create(**{field: value}))
    with pytest.raises(BadRequest) as info:
        body.counts(req)
    assert info.value.message == message


@pytest.mark.parametrize("field", ["key_name", "availability_zone"])
def test_names_are_at_most_255_characters(field: str) -> None:
    assert getattr(body.parse(create(**{field: "k" * 255})), field) == "k" * 255
    with pytest.raises(BadRequest, match=field):
        body.parse(create(**{field: "k" * 256}))


def test_security_group_names_are_at_most_255_characters() -> None:
    with pytest.raises(BadRequest, match="security_groups"):
        body.parse(create(security_groups=[{"name": "g" * 256}]))


@pytest.mark.parametrize("name", ["", "   ", "n" * 256, 5, None])
def test_bad_server_names(name: object) -> None:
    with pytest.raises(BadRequest, match="Server name"):
        body.server_name(name)


def test_server_name_is_trimmed() -> None:
    assert body.server_name("  web  ") == "web"
    assert body.parse(create(name=" web ")).name == "web"


def test_admin_pass() -> None:
    assert body.admin_pass(None) is None
    assert body.admin_pass("p" * 255) == "p" * 255
    for bad in ("", "p" * 256, 12, ["p"], {"p": 1}):
        with pytest.raises(BadRequest, match="adminPass"):
            body.admin_pass(bad)


def test_check_text() -> None:
    assert body.check_text("abc", "name", 3) == "abc"
    with pytest.raises(BadRequest, match="name: it is longer than 3 characters"):
        body.check_text("abcd", "name", 3)
    with pytest.raises(BadRequest, match="name: it must be a string"):
        body.check_text(["abc"], "name", 3)


@pytest.mark.parametrize("hints", [
    {"k" * 256: "v"},
    {"query": "v" * 256},
    {"query": ["ok", "v" * 256]},
    {"query": {"a": {"b": "v" * 256}}},
    {"query": {"k" * 256: 1}},
])
def test_scheduler_hints_are_bounded(hints: dict) -> None:
    with pytest.raises(BadRequest, match="Scheduler hint"):
        body.scheduler_hints({**create(), "OS-SCH-HNT:scheduler_hints": hints})


def test_scheduler_hints_up_to_the_limit_pass_through() -> None:
    hints = {"k" * 255: "v" * 255, "query": ["a", {"b": "c" * 255}], "n": 10**30}
    got = body.scheduler_hints({**create(), "OS-SCH-HNT:scheduler_hints": hints})
    assert got.hints == hints and got.servers == ()


def test_only_the_condition_hints_servers_are_looked_up() -> None:
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    hints = {"same_host": a, "different_host": [b], "near": f" {c.upper()} "}
    got = body.scheduler_hints({**create(), "OS-SCH-HNT:scheduler_hints": hints})
    assert got.hints == {"same_host": [a], "different_host": [b], "near": c}
    # near is a preference: the scheduler drops it when its server is not found.
    assert got.servers == (("same_host", uuid.UUID(a)), ("different_host", uuid.UUID(b)))
