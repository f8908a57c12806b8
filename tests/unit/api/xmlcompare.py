"""Compare XML documents by meaning: names, namespaces, attributes, text, children.

Whitespace around text is ignored (the spec pretty-prints text nodes) and so is
the order of siblings (the spec's examples list them in varying orders).
"""

from __future__ import annotations

from lxml import etree


def canonical(elem: etree._Element) -> tuple:
    text = (elem.text or "").strip()
    children = sorted(
        (canonical(child) for child in elem.iterchildren(tag=etree.Element)), key=repr
    )
    return (elem.tag, tuple(sorted(elem.attrib.items())), text, tuple(children))


def parse(data: bytes | str) -> etree._Element:
    if isinstance(data, str):
        data = data.encode()
    return etree.fromstring(data)


def assert_xml_equal(actual: bytes, expected: str) -> None:
    got, want = canonical(parse(actual)), canonical(parse(expected.strip()))
    assert got == want, (
        f"\nactual:\n{etree.tostring(parse(actual), pretty_print=True).decode()}"
        f"\nexpected:\n{etree.tostring(parse(expected.strip()), pretty_print=True).decode()}"
    )
