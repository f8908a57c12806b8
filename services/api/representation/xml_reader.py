"""Read an XML request body into the dict a JSON client would have sent.

The parser never resolves entities, loads DTDs or touches the network, and a
document with a DOCTYPE is refused outright (as Nova's safe parser did): no
request body needs one, and refusing it closes entity expansion ("billion
laughs") and external entities (``file:///etc/passwd``) whatever libxml2 does.

Mapping rules (attribute and text values stay strings; handlers convert):

* the root element is the single top-level key: ``<reboot type="HARD"/>`` ->
  ``{"reboot": {"type": "HARD"}}``; an empty root is JSON null
  (``<os-start/>`` -> ``{"os-start": None}``, as the spec pairs them);
* attributes and child elements become fields; a child with only text becomes
  a string (stripped of surrounding whitespace); repeated children become a list;
* ``<metadata><meta key="k">v</meta></metadata>`` (or ``<meta key value/>``)
  -> ``{"k": "v"}``; a root ``<meta key="k">v</meta>`` -> ``{"meta": {"k": "v"}}``;
* ``personality``, ``security_groups``, ``networks``, ``block_device_mapping``
  are always lists; ``<file path="p">data</file>`` -> ``{"path", "contents"}``;
* namespaces are dropped, except those of known extensions, which become the
  JSON prefix (``OS-SCH-HNT:scheduler_hints``); scheduler hints are moved from
  inside ``<server>`` to beside it, where JSON has them.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from shared.errors import MalformedBody
from services.api.representation.xml_rules import (
    HINTS_ALIASES,
    HINTS_KEY,
    PREFIX_OF_NAMESPACE,
    READ_LISTS,
    READ_OBJECTS,
    READ_TEXT_FIELD,
)

_XML_NS = "http://www.w3.org/XML/1998/namespace"

# Safe by construction; parsers are not thread-safe, but the API runs one
# event loop per process, so one instance is shared.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


def parse_xml(data: bytes) -> dict[str, Any]:
    """Parse an XML request body; raise MalformedBody if it is not usable."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedBody(details=_first_line(exc.msg or "")) from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise MalformedBody(details=_first_line(str(exc))) from None
    if root is None:
        raise MalformedBody()
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedBody(details="Document type declarations are not allowed.")
    return xml_to_dict(root)


def xml_to_dict(root: etree._Element) -> dict[str, Any]:
    """The JSON-shaped dict for a parsed request document."""
    key = _key(root.tag)
    if not root.attrib and len(root) == 0 and not (root.text or "").strip():
        value: Any = {} if key in READ_OBJECTS or key == "metadata" else None
        if key in READ_LISTS:
            value = []
        return {key: value}
    if key == "meta":
        name, value = _meta(root)
        return {"meta": {name: value}}
    result: dict[str, Any] = {key: _value(root, key)}
    body = result[key]
    if isinstance(body, dict):
        for alias in HINTS_ALIASES & body.keys():
            hints = body.pop(alias)
            result[HINTS_KEY] = hints if isinstance(hints, dict) else {}
    return result


def _value(elem: etree._Element, key: str) -> Any:
    if key == "metadata":
        return dict(_meta(child) for child in _children(elem))
    item = READ_LISTS.get(key)
    if item is not None:
        return [_value(child, item) for child in _children(elem)]
    children = _children(elem)
    attrib = elem.attrib
    if not attrib and not children:
        if key in READ_OBJECTS:
            return {}
        return (elem.text or "").strip()
    fields: dict[str, Any] = {}
    for name, value in attrib.items():
        if not name.startswith(f"{{{_XML_NS}}}"):
            fields[_key(name)] = value
    text_field = READ_TEXT_FIELD.get(key)
    if text_field is not None and not children:
        fields[text_field] = (elem.text or "").strip()
    repeated: set[str] = set()
    for child in children:
        child_key = _key(child.tag)
        value = _value(child, child_key)
        if child_key not in fields:
            fields[child_key] = value
        elif child_key in repeated:
            fields[child_key].append(value)
        else:
            fields[child_key] = [fields[child_key], value]
            repeated.add(child_key)
    return fields


def _meta(elem: etree._Element) -> tuple[str, str]:
    name = elem.get("key")
    if name is None:
        raise MalformedBody(details="A meta element has no key attribute.")
    value = elem.get("value")
    if value is None:
        # Metadata values are kept verbatim: spaces in them are data.
        value = elem.text or ""
    return name, value


def _children(elem: etree._Element) -> list[etree._Element]:
    # Only elements: with entities unresolved, entity references are nodes too.
    return list(elem.iterchildren(tag=etree.Element))


def _key(tag: str) -> str:
    if tag[0] != "{":
        return tag
    uri, _, local = tag[1:].partition("}")
    prefix = PREFIX_OF_NAMESPACE.get(uri)
    return f"{prefix}:{local}" if prefix else local


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "Malformed XML"
