"""Servers written straight as XML text: the writer's fast path for the bodies of
list, list detail and get (``{"servers": [...]}``, ``{"server": {...}}``).

The generic walk of ``xml_writer`` spent some 60 µs on each server of a detail
list (lxml elements and attributes, and the walk deciding, key by key, what each
one is): 3x the CPU of the JSON answer. A server's body has one shape, the views'
(``services.api.views.servers``), so here it is written as text in one pass,
byte for byte what the walk writes for it, with the walk's rules read from
``xml_rules`` (the server's renames and nulls, the fault's text children).

Anything else hands the body back (``None``) and the walk writes it: a key or a
value of a type the views do not make, a namespace prefix the root does not
declare, characters that need lxml's care. tests/unit/api/test_xml_servers.py
checks the two agree on servers of every shape the views make.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.api.representation.xml_rules import RULES, namespace_of_prefix

_SERVER = RULES["server"]
_FAULT = RULES["fault"]
_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"

# A body is first written with its values as they are; if one holds a character
# to escape it is written again, escaping as libxml2 does. One with characters
# lxml refuses (control characters) or XML cannot hold is the walk's: it cleans them.
_NOT_PLAIN = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_UNUSUAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_ESCAPES = re.compile('[&<>"\n\r\t]')
_TEXT_ESCAPES = re.compile("[&<>\r]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;",
             "\r": "&#13;", "\t": "&#9;"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_VOLUMES = "os-extended-volumes:volumes_attached"
_VOLUME = "os-extended-volumes:volume_attached"


class _Other(Exception):
    """Not a body this module writes."""


class _Escape(Exception):
    """A value to escape: write the body again, escaping."""


def _entity(match: re.Match[str]) -> str:
    return _ENTITIES[match.group()]


def _printable_ascii(text: str) -> bool:
    """No control character, nothing beyond ASCII: the usual case, told without a
    regular expression (whose search of a 100-server list's values took 0.3 ms)."""
    return text.isascii() and text.isprintable()


def _plain(text: str) -> bool:
    """Nothing in ``text`` to escape, nothing unusual."""
    if _printable_ascii(text):
        return not ("&" in text or "<" in text or ">" in text or '"' in text)
    return _NOT_PLAIN.search(text) is None


def render_servers(body: Mapping[str, Any], nsmap: Mapping[str | None, str]) -> bytes | None:
    """``body`` as XML under a root declaring ``nsmap``, or None for the generic walk."""
    try:
        try:
            return _Writer(nsmap, escape=False).render(body)
        except _Escape:
            return _Writer(nsmap, escape=True).render(body)
    except _Other:
        return None


class _Writer:
    """One body: what it writes, the values it wrote (to check once) and the names
    it has checked."""

    def __init__(self, nsmap: Mapping[str | None, str], *, escape: bool) -> None:
        self.nsmap = nsmap
        self.escape = escape
        self.out: list[str] = ["<?xml version='1.0' encoding='UTF-8'?>\n"]
        self.values: list[str] = []
        self.names: dict[str, str] = {}
        self.hoisted: dict[str, str] = {}
        """Prefixes the root lacked, in the order of first use: the walk declares
        them where used and hoists them to the root, after its own."""

    def render(self, body: Mapping[str, Any]) -> bytes | None:
        declared = "".join([f' xmlns="{uri}"' if prefix is None else f' xmlns:{prefix}="{uri}"'
                            for prefix, uri in self.nsmap.items()])
        out = self.out
        if "server" in body:
            if len(body) != 1 or not isinstance(body["server"], dict):
                return None
            self.server(body["server"], declared)
            if self.hoisted:  # rare (the root's prefixes come from the whole server)
                raise _Other
        else:
            servers, links = body.get("servers"), body.get("servers_links")
            if not isinstance(servers, list) or len(body) != 1 + ("servers_links" in body):
                return None
            if not servers and not links:
                out.append(f"<servers{declared}/>")
            else:
                out.append("")  # the root's start tag, once the prefixes are known
                for server in servers:
                    if not isinstance(server, dict):
                        return None
                    self.server(server, "")
                if links is not None:  # a next link has "&" more often than not
                    self.plain_so_far()
                    self.escape = True
                    self.links(links, out)
                out.append("</servers>")
                out[1] = f"<servers{declared}" + "".join(
                    [f' xmlns:{prefix}="{uri}"' for prefix, uri in self.hoisted.items()]) + ">"
        self.plain_so_far()
        values = "".join(self.values)
        if not _printable_ascii(values) and _UNUSUAL.search(values) is not None:
            raise _Other
        return "".join(out).encode("utf-8")

    def plain_so_far(self) -> None:
        """Raise _Escape if a value written without escaping needed it."""
        if not self.escape and not _plain("".join(self.values)):
            raise _Escape

    def name(self, key: Any) -> str:
        """``key`` as an element or attribute name: itself, if plain or with a
        prefix the root declares."""
        name = self.names.get(key)
        if name is None:
            if key.__class__ is not str:
                raise _Other
            prefix, colon, local = key.rpartition(":")
            if _NAME.fullmatch(local) is None or colon and _NAME.fullmatch(prefix) is None:
                raise _Other
            if colon and prefix not in self.nsmap and prefix not in self.hoisted:
                self.hoisted[prefix] = namespace_of_prefix(prefix)
            name = self.names[key] = key
        return name

    def attrs(self, data: Mapping[str, Any]) -> str:
        """Every item of ``data`` as an attribute; each value a string."""
        values = self.values
        written = []
        for key, value in data.items():
            if value.__class__ is not str:
                if value.__class__ is not int:
                    raise _Other
                value = str(value)
            values.append(value)
            if self.escape:
                value = _ATTR_ESCAPES.sub(_entity, value)
            written.append(f' {self.names.get(key) or self.name(key)}="{value}"')
        return "".join(written)

    def links(self, links: Any, out: list[str]) -> None:
        if not isinstance(links, list):
            raise _Other
        for link in links:
            if not isinstance(link, dict):
                raise _Other
            out.append(f"<atom:link{self.attrs(link)}/>")

    def server(self, server: Mapping[str, Any], declared: str) -> None:
        rename, none, values, names = _SERVER.rename, _SERVER.none, self.values, self.names
        attrs: list[str] = []
        children: list[str] = []
        objects = []
        for key, value in server.items():
            cls = value.__class__
            if cls is str or cls is int or value is None:
                if value is None:
                    if none is None:
                        continue
                    value = none
                elif cls is int:
                    value = str(value)
                values.append(value)
                if self.escape:
                    value = _ATTR_ESCAPES.sub(_entity, value)
                name = rename.get(key, key)
                attrs.append(f' {names.get(name) or self.name(name)}="{value}"')
            else:
                objects.append((key, value))
        # The walk writes (and meets prefixes in) the attributes first, then the rest.
        for key, value in objects:
            cls = value.__class__
            if key == "links":
                self.links(value, children)
            elif (key == "image" or key == "flavor") and cls is dict:
                links: list[str] = []
                self.links(value.get("links", []), links)
                attrs_of = self.attrs({k: v for k, v in value.items() if k != "links"})
                children.append(f"<{key}{attrs_of}>{''.join(links)}</{key}>" if links
                                else f"<{key}{attrs_of}/>")
            elif key == "metadata" and cls is dict:
                self.metadata(value, children)
            elif key == "addresses" and cls is dict:
                self.addresses(value, children)
            elif key == "fault" and cls is dict:
                self.fault(value, children)
            elif key == "security_groups" and cls is list:
                self.security_groups(value, children)
            elif key == _VOLUMES and cls is list:
                for volume in value:
                    if not isinstance(volume, dict):
                        raise _Other
                    children.append(f"<{self.name(_VOLUME)}{self.attrs(volume)}/>")
            else:
                raise _Other
        start = "<server" + declared + "".join(attrs)
        if children:
            self.out.append(start + ">" + "".join(children) + "</server>")
        else:
            self.out.append(start + "/>")

    def metadata(self, items: Mapping[str, Any], out: list[str]) -> None:
        if not items:
            out.append("<metadata/>")
            return
        values = self.values
        written = ["<metadata>"]
        for key, value in items.items():
            if value is None:
                value = "None"
            elif value.__class__ is not str or key.__class__ is not str:
                raise _Other
            values.append(key)
            values.append(value)
            if self.escape:
                key, value = _ATTR_ESCAPES.sub(_entity, key), _TEXT_ESCAPES.sub(_entity, value)
            written.append(f'<meta key="{key}">{value}</meta>')
        written.append("</metadata>")
        out.append("".join(written))

    def addresses(self, networks: Mapping[str, Any], out: list[str]) -> None:
        if not networks:
            out.append("<addresses/>")
            return
        written = ["<addresses>"]
        for network, ips in networks.items():
            if network.__class__ is not str:
                raise _Other
            self.values.append(network)
            if self.escape:
                network = _ATTR_ESCAPES.sub(_entity, network)
            if not ips:
                written.append(f'<network id="{network}"/>')
                continue
            if not isinstance(ips, list):
                raise _Other
            written.append(f'<network id="{network}">')
            for ip in ips:
                if not isinstance(ip, dict):
                    raise _Other
                written.append(f"<ip{self.attrs(ip)}/>")
            written.append("</network>")
        written.append("</addresses>")
        out.append("".join(written))

    def fault(self, fault: Mapping[str, Any], out: list[str]) -> None:
        attrs, texts = {}, []
        for key, value in fault.items():
            if value is None:
                if _FAULT.none is None:
                    continue
                value = _FAULT.none
            if key in _FAULT.text:
                if value.__class__ is not str:
                    if value.__class__ is not int:
                        raise _Other
                    value = str(value)
                self.values.append(value)
                if self.escape:
                    value = _TEXT_ESCAPES.sub(_entity, value)
                name = self.name(key)
                texts.append(f"<{name}>{value}</{name}>")
            else:
                attrs[key] = value
        start = "<fault" + self.attrs(attrs)
        out.append(f"{start}>{''.join(texts)}</fault>" if texts else start + "/>")

    def security_groups(self, groups: list[Any], out: list[str]) -> None:
        if not groups:
            out.append("<security_groups/>")
            return
        written = ["<security_groups>"]
        for group in groups:
            if not isinstance(group, dict) or set(group) != {"name"}:
                raise _Other
            written.append(f"<security_group{self.attrs(group)}/>")
        written.append("</security_groups>")
        out.append("".join(written))
