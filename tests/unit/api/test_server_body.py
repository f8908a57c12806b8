"""The create-server body's limits, and the text checks other server bodies share."""

from __future__ import annotations

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
