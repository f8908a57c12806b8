"""Hypothesis strategies for request bodies that are wrong, as JSON or XML bytes.

Three kinds, each drawn for a given endpoint's valid bodies:

* ``junk_values``: structured but wrong: wrong types, huge numbers and digit
  strings, NUL and control characters, long strings, unicode, nesting;
* ``mutated``: a valid body with one thing changed: a field replaced by junk,
  dropped, duplicated (the same key twice, which JSON allows and XML refuses),
  an extra field, or the root itself replaced;
* ``raw_json`` / ``raw_xml``: documents no encoder would write: truncated,
  deeply nested, not UTF-8, DOCTYPEs and entities, NaN, two roots...

Structured bodies are encoded by ``to_json`` and ``to_xml`` here rather than by a
library, so that they can hold what libraries refuse to write (duplicate keys,
characters XML cannot carry, names that are not XML names): the API must
answer those with a fault too.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from hypothesis import strategies as st

from services.api.representation.xml_rules import READ_LISTS


class Pairs(list):
    """An object whose keys may repeat: a list of ``(key, value)``."""


# ---- values ------------------------------------------------------------------

CHARS = st.characters(codec="utf-8")
"""Any code point UTF-8 can carry (no surrogates), control characters included."""

DIGIT_RUNS = st.sampled_from([19, 20, 64, 309, 4300, 4301, 5000]).map(lambda n: "9" * n)

SPECIAL_TEXT = st.sampled_from([
    "", " ", "\u0000", "a\u0000b", "\x01\x1f\x7f", "\t\n\r", "\u202e", "\ufeff", "\U0001f600",
    "e\u0301", "\ufffd", "null", "true", "0", "-1", "1e5", "0x10", "+1", "1_0", "\u0661\u0662",
    "NaN", "Infinity", "[]", "{}", "<x/>", "&amp;", "]]>", "'; DROP TABLE servers; --", "%00",
    "..", "/", "HARD", "SOFT", "novnc", "xvpvnc", "ssh", "tcp", "icmp", "0.0.0.0/0",
    "15.126.0.1", "10.0.0.2", "::1", "public", "default", "az1", "2001:db8::/129",
    "00000000-0000-0000-0000-000000000000", "-" + "9" * 5000, "0" * 5000 + "1",
])

TEXT = st.one_of(
    st.text(CHARS, max_size=16),
    SPECIAL_TEXT,
    DIGIT_RUNS,
    st.sampled_from([255, 256, 1000, 70_000]).map(lambda n: "x" * n),
)

NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=70_000),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**300]),
    st.floats(allow_nan=False, allow_infinity=False),
)

SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def junk_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Any JSON value, scalars or small nested lists and objects, keys from ``keys``."""
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=10,
    )


def nested(depth: int, leaf: Any = 1) -> Any:
    """Lists inside lists ``depth`` deep (built bottom up: no recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


DEPTHS = st.sampled_from([31, 33, 100, 255, 257, 1000, 3000])


# ---- mutations of valid bodies ---------------------------------------------------

def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every dict entry and list item in ``value``."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*path, key))
            found.extend(_slots(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*path, index))
            found.extend(_slots(item, (*path, index)))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any], keys: st.SearchStrategy[str]) -> Any:
    """``valid`` with one thing changed (see the module docstring)."""
    body = copy.deepcopy(valid)
    junk = junk_values(keys)
    slots = _slots(body)
    op = draw(st.sampled_from(["replace"] * 4 + ["drop", "duplicate", "extra", "root", "deep"]))
    path = draw(st.sampled_from(slots))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "replace":
        parent[last] = draw(junk)
    elif op == "drop":
        del parent[last]
    elif op == "duplicate" and isinstance(parent, dict):
        pairs = Pairs(parent.items())
        pairs.append((last, draw(junk)))
        if len(path) == 1:
            return pairs
        grand = body
        for step in path[:-2]:
            grand = grand[step]
        grand[path[-2]] = pairs
    elif op == "extra" and isinstance(parent, dict):
        parent[draw(keys)] = draw(junk)
    elif op == "root":
        return {draw(keys): body[next(iter(body))]} if draw(st.booleans()) else draw(junk)
    elif op == "deep":
        parent[last] = nested(draw(DEPTHS), parent[last])
    else:  # duplicate or extra in a list: the item twice
        parent.insert(last, copy.deepcopy(parent[last]))
    return body


# ---- encoders ------------------------------------------------------------------

def to_json(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON for ``value``; ``Pairs`` keep their repeated keys."""
    out: list[str] = []
    stack: list[Any] = [value]
    # Iterative: values may nest thousands deep.
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, dict | Pairs):
            pairs = list(item.items()) if isinstance(item, dict) else list(item)
            parts: list[Any] = [_Raw("{")]
            for i, (key, val) in enumerate(pairs):
                sep = "," if i else ""
                parts += [_Raw(sep + json.dumps(str(key), ensure_ascii=ascii_only) + ":"), val]
            parts.append(_Raw("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [_Raw("[")]
            for i, val in enumerate(item):
                parts += [_Raw(","), val] if i else [val]
            parts.append(_Raw("]"))
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(item, ensure_ascii=ascii_only))
    return "".join(out).encode("utf-8", "surrogatepass")


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):  # where XML wants text: the JSON of it
        text = to_json(value).decode("utf-8", "surrogatepass")
    else:
        text = str(value)
    text = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
    # A character XML cannot hold becomes a reference to it: the document is then
    # not well-formed, which is one more thing the API must refuse cleanly.
    return _XML_CHAR.sub(lambda m: f"&#{ord(m.group())};", text)


def to_xml(root: str, value: Any, *, attributes: bool = True) -> bytes:
    """The XML a client would send for ``{root: value}``: scalars of an object as
    attributes (or child elements), lists as repeated items, metadata as ``<meta>``."""
    return _element(root, value, attributes, 0).encode("utf-8", "surrogatepass")


def _element(tag: str, value: Any, attributes: bool, depth: int) -> str:
    if depth > 100:
        # Deeper still, as flat text: recursing on would exhaust the stack, and
        # the parser refuses anything past 256 levels whatever lies below.
        return f"<{tag}>" + "<item>" * 200 + "</item>" * 200 + f"</{tag}>"
    if value is None:
        return f"<{tag}/>"
    if tag == "metadata" and isinstance(value, dict | Pairs):
        items = value.items() if isinstance(value, dict) else value
        metas = "".join(f'<meta key="{_xml_text(k)}">{_xml_text(v)}</meta>' for k, v in items)
        return f"<{tag}>{metas}</{tag}>"
    if isinstance(value, dict | Pairs):
        items = list(value.items()) if isinstance(value, dict) else list(value)
        attrs, children = [], []
        for key, item in items:
            if attributes and not isinstance(item, dict | list | Pairs) and item is not None:
                attrs.append(f' {key}="{_xml_text(item)}"')
            else:
                children.append(_element(str(key), item, attributes, depth + 1))
        return f"<{tag}{''.join(attrs)}>{''.join(children)}</{tag}>"
    if isinstance(value, list):
        item_tag = READ_LISTS.get(tag, "item")
        inner = "".join(_element(item_tag, item, attributes, depth + 1) for item in value)
        return f"<{tag}>{inner}</{tag}>"
    return f"<{tag}>{_xml_text(value)}</{tag}>"


# ---- raw documents ---------------------------------------------------------------

@st.composite
def raw_json(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """A JSON document no encoder writes, around the root key of ``valid``."""
    root = json.dumps(next(iter(valid)))
    good = to_json(valid)
    depth = draw(DEPTHS)
    return draw(st.sampled_from([
        good[: draw(st.integers(0, max(len(good) - 1, 0)))],            # truncated
        b"\xef\xbb\xbf" + good,                                         # BOM
        good.replace(b":", b":\xff", 1),                                # not UTF-8
        f'{{{root}: NaN}}'.encode(), f'{{{root}: -Infinity}}'.encode(),
        f'{{{root}: {"9" * 5000}}}'.encode(), f'{{{root}: 1e999}}'.encode(),
        f'{{{root}: {{"a": 1,}}}}'.encode(), f"{{'{root[1:-1]}': 1}}".encode(),
        f'{{{root}: /* c */ 1}}'.encode(), f'{{{root}: "\\ud800"}}'.encode(),
        f'{{{root}: "\\u0000"}}'.encode(), f'{{{root}: "\x01"}}'.encode(),
        ("[" * depth + "]" * depth).encode(),
        (f'{{{root}: ' + '{"a": ' * depth + "1" + "}" * depth + "}").encode(),
        b"[]", b'"text"', b"null", b"12", b"{}", b"{" + b" " * 1000 + b"}", good + good,
    ]))


@st.composite
def raw_xml(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """An XML document no well-behaved client writes, around the root of ``valid``."""
    root = next(iter(valid))
    good = to_xml(root, valid[root])
    depth = draw(DEPTHS)
    laughs = ('<!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>')
    return draw(st.sampled_from([
        good[: draw(st.integers(0, max(len(good) - 1, 0)))],
        f'<?xml version="1.0"?>{laughs}<{root} name="&c;"/>'.encode(),
        f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "file:///etc/passwd">]><{root}>&x;</{root}>'
        .encode(),
        f'<!DOCTYPE {root} SYSTEM "http://127.0.0.1:1/x.dtd"><{root}/>'.encode(),
        f"<{root}>&undeclared;</{root}>".encode(),
        f'<{root} name="a" name="b"/>'.encode(),
        f"<{root}><![CDATA[<x/>]]></{root}>".encode(),
        f'<{root} xmlns:x="urn:x" x:name="a" xml:lang="en"/>'.encode(),
        f'<?xml version="1.0" encoding="UTF-16"?><{root}/>'.encode(),
        f'<?xml version="1.0" encoding="nope"?><{root}/>'.encode(),
        b"\xef\xbb\xbf" + good, good.replace(b">", b">\xff", 1),
        f"<{root}>&#0;</{root}>".encode(), f"<{root}>&#xD800;</{root}>".encode(),
        f"<{root} name='\x01'/>".encode(),
        (f"<{root}>" + "<a>" * depth + "</a>" * depth + f"</{root}>").encode(),
        good + b"<extra/>", f"<{root}><?pi x?><!-- c --></{root}>".encode(),
        b"<metadata><meta>no key</meta></metadata>", b"<meta key='k'>v</meta>",
        f"<{root}>{'x' * 70_000}</{root}>".encode(),
    ]))
