"""Write a JSON-shaped response body as the XML the spec shows.

One generic walk over the body, steered by the tables in ``xml_rules``:

* the single top-level key names the root element (a list's container name for
  a list, e.g. ``availabilityZoneInfo`` -> ``<availabilityZones>``); a string
  value becomes the root's text (``<output>``, ``<adminPass>``);
* scalars become attributes, or child elements with text where the element's
  rule says so (descriptions, keypairs, floating IPs, security group rules);
* ``links`` and ``<x>_links`` become ``atom:link`` children;
* objects become child elements; lists become a container of singular items;
* ``metadata``, ``addresses``, ``absolute`` and ``hosts`` hold data keys and get
  their own spelling (``<meta key="k">v</meta>``, ``<network id="n"><ip/>``,
  ``<limit name="k" value="v"/>``, ``<host name="h">``);
* a key with an extension prefix (``OS-EXT-STS:vm_state``) is written in that
  extension's namespace, declared once on the root;
* JSON null is written ``None`` and booleans ``True``/``False``, as in the
  spec's examples (an element's rule may write null as ``""`` or leave it out).

The bodies of servers (list, detail, get) take a fast path, ``xml_servers``, which
writes the same bytes as text; the walk writes whatever it declines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from lxml import etree

from services.api.representation.xml_rules import (
    DEFAULT_RULE,
    KEYED_MAPS,
    ROOT_EXTRA_NSMAP,
    ROOT_NAMESPACES,
    RULES,
    SHAPE_NAMESPACES,
    XMLNS_ATOM,
    XMLNS_V2,
    ElementRule,
    list_shape,
    namespace_of_prefix,
)
from services.api.representation.xml_servers import render_servers

NETWORK_ADDRESSES = "network_addresses"
"""Body shape ``{"<network name>": [ip, ...]}`` (GET .../ips/{network}), written
as ``<network id="<network name>"><ip .../></network>``: the root key is data,
so nothing in the body itself says so."""

_ATOM_LINK = f"{{{XMLNS_ATOM}}}link"

# Characters XML 1.0 cannot carry (console output has ESC sequences, say).
_PREFIX = re.compile(r"[A-Za-z_][\w.\-]*")  # an NCName, near enough
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Context:
    """State of one rendering: default namespace, prefixes in scope and to hoist."""

    __slots__ = ("ns", "on_root", "prefixes", "_tags")

    def __init__(self, ns: str, on_root: Mapping[str | None, str]) -> None:
        self.ns = ns
        self.on_root = on_root
        self.prefixes: dict[str, str] = {}
        """Prefixes declared below the root, to hoist there when done."""
        self._tags: dict[str, str] = {}

    def tag(self, name: str) -> str:
        """Clark name of an element (or attribute) called ``name`` in JSON."""
        tag = self._tags.get(name)
        if tag is None:
            prefix, sep, local = name.partition(":")
            if sep and _PREFIX.fullmatch(prefix):
                tag = f"{{{namespace_of_prefix(prefix)}}}{local}"
            else:
                tag = f"{{{self.ns}}}{name}"
            self._tags[name] = tag
        return tag

    def declare(self, nsmap: dict[str | None, str] | None, name: str) -> dict[str | None, str] | None:
        """``nsmap`` plus the prefix of ``name``, unless the root declares it.

        A prefix the root lacks is declared on the element that uses it and
        hoisted to the root by ``cleanup_namespaces`` at the end; lxml would
        otherwise invent ``ns0`` prefixes.
        """
        prefix = name.partition(":")[0]
        if prefix in self.on_root or not _PREFIX.fullmatch(prefix):
            return nsmap
        uri = namespace_of_prefix(prefix)
        self.prefixes[prefix] = uri
        declared = dict(nsmap) if nsmap else {}
        declared[prefix] = uri
        return declared


def _scan_prefixes(value: Any, found: dict[str | None, str]) -> None:
    """Add the extension prefixes ``value`` uses to ``found``, to declare on the root.

    Only the first item of each list is looked at: items of a list share their
    keys. Anything missed is still declared where used and hoisted later.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if ":" in key:
                prefix = key.partition(":")[0]
                if _PREFIX.fullmatch(prefix):
                    found[prefix] = namespace_of_prefix(prefix)
            if key in KEYED_MAPS and isinstance(item, dict):
                for entry in item.values():  # addresses: {network: [ip, ...]}
                    _scan_prefixes(entry, found)
                    break
            elif isinstance(item, (dict, list, tuple)):
                _scan_prefixes(item, found)
    elif isinstance(value, (list, tuple)) and value:
        _scan_prefixes(value[0], found)


def render_xml(body: Mapping[str, Any], *, shape: str | None = None) -> bytes:
    """Serialize a response body (as JSON would have it) to XML bytes."""
    if not isinstance(body, dict):
        body = msgspec.to_builtins(body)
    if not body:
        return b""
    if shape == NETWORK_ADDRESSES and len(body) == 1:
        return _render_network(body)

    keys = iter(body)
    root_key = next(keys)
    value = body[root_key]
    if isinstance(value, (list, tuple)):
        list_form = list_shape(root_key)
        root_tag = list_form.container or root_key
    else:
        list_form = None
        root_tag = root_key
    if ":" in root_tag:  # a prefixed root has no default namespace of its own
        root_tag = root_tag.partition(":")[2]
    if root_key == "meta" and not (isinstance(value, dict) and len(value) == 1):
        root_key = root_tag = "metadata"  # several items cannot share one <meta>
    ns = SHAPE_NAMESPACES.get(shape or "") or ROOT_NAMESPACES.get(root_tag, XMLNS_V2)
    nsmap: dict[str | None, str] = {None: ns, "atom": XMLNS_ATOM}
    nsmap.update(ROOT_EXTRA_NSMAP.get(root_tag, {}))
    _scan_prefixes(body, nsmap)
    if root_tag in ("servers", "server") and shape is None:
        written = render_servers(body, nsmap)  # the same bytes, a fraction of the CPU
        if written is not None:
            return written
    ctx = _Context(ns, nsmap)

    if root_key == "meta":
        ((key, item),) = value.items()
        root = _make(ctx, None, "meta", {"key": str(key)}, nsmap)
        _set_text(root, _scalar(item, "None"))
    elif list_form is not None:
        root = _make(ctx, None, root_tag, None, nsmap)
        _add_items(ctx, root, list_form.item, value)
    elif isinstance(value, dict) and root_key not in KEYED_MAPS:
        root = _object(ctx, None, root_tag, value, nsmap)
    else:
        root = _make(ctx, None, root_tag, None, nsmap)
        if isinstance(value, dict):
            _write_keyed(ctx, root, root_key, value)
        elif value is not None:
            _set_text(root, _scalar(value, "None"))
    rule = RULES.get(root_tag, DEFAULT_RULE)
    for key in keys:  # e.g. "servers_links" beside "servers"
        _add(ctx, root, rule, key, body[key])
    return _serialize(ctx, root, nsmap)


def _render_network(body: Mapping[str, Any]) -> bytes:
    ((name, ips),) = body.items()
    nsmap: dict[str | None, str] = {None: XMLNS_V2, "atom": XMLNS_ATOM}
    _scan_prefixes(ips, nsmap)
    ctx = _Context(XMLNS_V2, nsmap)
    root = _make(ctx, None, "network", {"id": str(name)}, nsmap)
    _add_items(ctx, root, "ip", ips or ())
    return _serialize(ctx, root, nsmap)


def _serialize(ctx: _Context, root: etree._Element, nsmap: Mapping[str | None, str]) -> bytes:
    if ctx.prefixes:
        etree.cleanup_namespaces(
            root,
            top_nsmap=ctx.prefixes,
            keep_ns_prefixes=[p for p in nsmap if p is not None],
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _object(
    ctx: _Context,
    parent: etree._Element | None,
    name: str,
    data: Mapping[str, Any],
    nsmap: dict[str | None, str] | None = None,
) -> etree._Element:
    """The element for a JSON object: scalars as attributes, the rest as children."""
    rule = RULES.get(name.rpartition(":")[2], DEFAULT_RULE)
    none, rename, text_keys, all_text = rule.none, rule.rename, rule.text, rule.all_text
    attrib: dict[str, str] = {}
    children: list[tuple[str, Any]] = []
    for key, value in data.items():
        if value is None:
            if none is None:
                continue
            value = none
        elif value.__class__ is not str:
            if isinstance(value, (dict, list, tuple)):
                children.append((key, value))
                continue
            if not isinstance(value, (str, int, float)):
                value = msgspec.to_builtins(value)  # UUID, datetime, Enum, Struct...
                if isinstance(value, (dict, list)):
                    children.append((key, value))
                    continue
            value = _scalar(value, none)
        if key in text_keys or (all_text and key not in rule.attrs):
            children.append((key, value))
            continue
        attr = rename.get(key, key)
        if ":" in attr:
            nsmap = ctx.declare(nsmap, attr)
            attr = ctx.tag(attr)
        attrib[attr] = value
    elem = _make(ctx, parent, name, attrib, nsmap)
    for key, value in children:
        _add(ctx, elem, rule, key, value)
    for child in rule.empty_children:
        if child not in data:
            etree.SubElement(elem, ctx.tag(child))
    return elem


def _add(ctx: _Context, parent: etree._Element, rule: ElementRule, key: str, value: Any) -> None:
    """Write one non-attribute field of the object ``parent`` stands for."""
    if isinstance(value, str):  # a scalar the rule writes as text
        _set_text(_make(ctx, parent, rule.rename.get(key, key), None), value)
    elif isinstance(value, dict):
        if key in KEYED_MAPS:
            _write_keyed(ctx, _make(ctx, parent, key, None), key, value)
        else:
            _object(ctx, parent, rule.rename.get(key, key), value)
    elif isinstance(value, (list, tuple)):
        if key == "links" or key.endswith("_links"):
            _add_links(parent, value)
            return
        list_form = list_shape(key)
        container = parent if list_form.container is None else _make(ctx, parent, list_form.container, None)
        _add_items(ctx, container, list_form.item, value)
    elif value is None:
        if rule.none is not None:
            _set_text(_make(ctx, parent, rule.rename.get(key, key), None), rule.none)
    else:  # a number, UUID, datetime, Struct... beside the root: as JSON has it
        converted = msgspec.to_builtins(value)
        if not isinstance(converted, (dict, list, str)):
            converted = _scalar(converted, rule.none)
        _add(ctx, parent, rule, key, converted)


def _add_items(ctx: _Context, container: etree._Element, item: str, values: Any) -> None:
    none = RULES.get(item, DEFAULT_RULE).none or ""
    for value in values:
        if isinstance(value, dict):
            _object(ctx, container, item, value)
            continue
        if not isinstance(value, (list, tuple, str, int, float)) and value is not None:
            value = msgspec.to_builtins(value)
            if isinstance(value, dict):
                _object(ctx, container, item, value)
                continue
        if isinstance(value, (list, tuple)):
            _add_items(ctx, _make(ctx, container, item, None), "item", value)
        else:
            _set_text(_make(ctx, container, item, None), _scalar(value, none))


def _add_links(parent: etree._Element, links: Any) -> None:
    for link in links:
        if not isinstance(link, dict):
            continue
        try:
            etree.SubElement(parent, _ATOM_LINK, link)
        except (TypeError, ValueError):  # a None, a number, a character XML cannot hold
            attrib = {k: xml_safe(_scalar(v, "")) for k, v in link.items() if v is not None}
            etree.SubElement(parent, _ATOM_LINK, attrib)


def _write_keyed(ctx: _Context, elem: etree._Element, key: str, data: Mapping[str, Any]) -> None:
    """Write a map whose keys are data, into its (already made) element."""
    if key == "metadata":
        meta = ctx.tag("meta")
        for name, value in data.items():
            item = _attributed(elem, meta, {"key": str(name)})
            _set_text(item, _scalar(value, "None"))
    elif key == "addresses":
        network = ctx.tag("network")
        for name, ips in data.items():
            _add_items(ctx, _attributed(elem, network, {"id": str(name)}), "ip", ips or ())
    elif key == "absolute":
        limit = ctx.tag("limit")
        for name, value in data.items():
            _attributed(elem, limit, {"name": str(name), "value": _scalar(value, "None")})
    elif key == "hosts":  # os-availability-zone detail: {host: {service: state}}
        for host, services in data.items():
            host_elem = _attributed(elem, ctx.tag("host"), {"name": str(host)})
            services_elem = etree.SubElement(host_elem, ctx.tag("services"))
            for service, state in (services or {}).items():
                service_elem = _attributed(services_elem, ctx.tag("service"), {"name": str(service)})
                if isinstance(state, dict):
                    _object(ctx, service_elem, "serviceState", state)


def _make(
    ctx: _Context,
    parent: etree._Element | None,
    name: str,
    attrib: dict[str, str] | None,
    nsmap: dict[str | None, str] | None = None,
) -> etree._Element:
    """A new element ``name`` (JSON spelling) with its attributes, under ``parent``."""
    if ":" in name and parent is not None:
        nsmap = ctx.declare(nsmap, name)
    tag = ctx.tag(name)
    try:
        if parent is None:
            return etree.Element(tag, attrib, nsmap)
        return etree.SubElement(parent, tag, attrib, nsmap)
    except ValueError:
        pass
    # Some value holds characters XML cannot carry, or some name is not an
    # XML name (a view put data in a key): clean values, keep odd names as
    # <entry key="...">value</entry> children rather than fail the response.
    clean: dict[str, str] = {}
    odd: list[tuple[str, str]] = []
    for attr, value in (attrib or {}).items():
        if _is_name(attr):
            clean[attr] = xml_safe(value)
        else:
            odd.append((attr, xml_safe(value)))
    if not _is_name(tag):
        clean["key"] = name
        tag = ctx.tag("entry")
    elem = etree.Element(tag, clean, nsmap) if parent is None else etree.SubElement(parent, tag, clean, nsmap)
    for attr, value in odd:
        _attributed(elem, ctx.tag("entry"), {"key": attr}).text = value
    return elem


def _attributed(parent: etree._Element, tag: str, attrib: dict[str, str]) -> etree._Element:
    try:
        return etree.SubElement(parent, tag, attrib)
    except ValueError:
        return etree.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrib.items()})


def _scalar(value: Any, none: str | None) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return none or ""
    if value is True:
        return "True"  # as the spec shows (zoneState available="True")
    if value is False:
        return "False"
    if isinstance(value, (int, float)):
        return str(value)
    converted = msgspec.to_builtins(value)
    return converted if isinstance(converted, str) else str(converted)


def _set_text(elem: etree._Element, text: str) -> None:
    # lxml refuses control characters (ValueError) but takes U+FFFE and U+FFFF,
    # which XML cannot hold either: the document would not parse.
    if "\ufffe" in text or "\uffff" in text:
        elem.text = xml_safe(text)
        return
    try:
        elem.text = text
    except ValueError:
        elem.text = xml_safe(text)


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold."""
    return _NOT_XML_CHAR.sub("", text)


def _is_name(name: str) -> bool:
    try:
        etree.QName(name)
    except ValueError:
        return False
    return True
