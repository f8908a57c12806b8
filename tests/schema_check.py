"""A small JSON-schema checker: what warlock (under python-glanceclient) checks of
an image the image endpoint answers, without adding jsonschema to the test
environment. It knows the keywords Glance's schemas use."""

from __future__ import annotations

import re
from typing import Any

_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict,
          "null": type(None)}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Raise AssertionError where ``value`` breaks ``schema`` (the keywords Glance's
    schemas use: type, enum, pattern, maxLength, items, properties,
    additionalProperties)."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        assert any(_is(value, k) for k in kinds), f"{where}: {value!r} is not {kinds}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, str):
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), f"{where}: {value!r} pattern"
        assert len(value) <= schema.get("maxLength", len(value)), f"{where}: too long"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{where}.{key}")
            else:
                assert extra is not False, f"{where}: {key} not allowed"
                if isinstance(extra, dict):
                    validate(item, extra, f"{where}.{key}")
