"""The tables that drive the XML codec: namespaces, list items, per-element hints.

Everything the XML writer and reader know about the shape of the compute API
lives here as data, so that a new view usually needs a new row, not new code.
The JSON body a handler returns is the source of truth; these tables only say
how to spell it in XML (which section 4.4 of the spec shows for each call).

Spec contradictions settled here (the spec's examples disagree with each other):

* Default namespace: the examples of section 3.4, 3.5, 3.11 and most of 4.4 use
  ``http://docs.openstack.org/compute/api/v2``; the config-drive, extended
  status/AZ/IPs and scheduler-hints examples use ``.../compute/api/v1.1``.
  We write v2 and read either (namespaces are ignored when reading).
* Version, extension and limits documents: only 4.4.12 shows a namespace
  (``http://docs.openstack.org/common/api/v1.0``, as Nova did for all three);
  4.4.1.1-4.4.1.4 show none. We use the common namespace for all of them.
* Snapshots: every snapshot example uses ``http://docs.openstack.org/volume/api/v1``,
  so we keep that; volumes use v2 like the rest of the compute API (their list
  and show examples show no namespace), except the answer to create volume:
  its example, copied from the block storage docs like its snake_case body,
  shows volume/api/v1, and we follow it there (``BLOCK_STORAGE``).
* ``None``: most examples (server ``OS-EXT-STS:task_state``/``key_name``,
  volumes, floating IPs, security group rules) render a JSON null as the text
  ``None``; the extended-status examples show ``""`` for the same attribute.
  We follow the majority (``None``), except for instance actions, whose only
  examples show ``message=""``, and availability zones, which omit ``hosts``.
* The os-user-data namespace appears as ``.../userdata/api/v1. 1`` (with a
  space) in the JSON extension list and ``.../userdata/api/v1.1`` in the XML one;
  we use the latter.
* Create Server names the hints key ``OS-SCH-HINTS:scheduler_hints`` in its
  parameter list but ``OS-SCH-HNT:scheduler_hints`` in section 4.4.10 and the
  extension list; we use ``OS-SCH-HNT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

XMLNS_V2 = "http://docs.openstack.org/compute/api/v2"
XMLNS_V11 = "http://docs.openstack.org/compute/api/v1.1"
XMLNS_COMMON = "http://docs.openstack.org/common/api/v1.0"
XMLNS_VOLUME = "http://docs.openstack.org/volume/api/v1"
XMLNS_ATOM = "http://www.w3.org/2005/Atom"

_EXT = "http://docs.openstack.org/compute/ext/"

EXTENSION_NAMESPACES: Mapping[str, str] = {
    # From the extension list of section 4.4.1.2.
    "OS-EXT-AZ": _EXT + "extended_availability_zone/api/v2",
    "OS-EXT-IMG-SIZE": _EXT + "image_size/api/v1.1",
    "OS-EXT-IPS": _EXT + "extended_ips/api/v1.1",
    "OS-EXT-IPS-MAC": _EXT + "extended_ips_mac/api/v1.1",
    "OS-EXT-STS": _EXT + "extended_status/api/v1.1",
    "OS-FLV-EXT-DATA": _EXT + "flavor_extra_data/api/v1.1",
    "OS-SCH-HNT": _EXT + "scheduler-hints/api/v2",
    "os-availability-zone": _EXT + "availabilityzone/api/v1.1",
    "os-config-drive": _EXT + "config_drive/api/v1.1",
    "os-console-output": _EXT + "os-console-output/api/v2",
    "os-consoles": _EXT + "os-consoles/api/v2",
    "os-create-server-ext": _EXT + "createserverext/api/v1.1",
    "os-extended-floating-ips": _EXT + "extended_floating_ips/api/v2",
    "os-flavor-rxtx": _EXT + "flavor_rxtx/api/v1.1",
    "os-flavor-swap": _EXT + "flavor_swap/api/v1.1",
    "os-floating-ips": _EXT + "floating_ips/api/v1.1",
    "os-hide-server-addresses": _EXT + "hide_server_addresses/api/v1.1",
    "os-instance-actions": _EXT + "instance-actions/api/v1.1",
    "os-keypairs": _EXT + "keypairs/api/v1.1",
    "os-multiple-create": _EXT + "multiplecreate/api/v1.1",
    "os-rescue": _EXT + "rescue/api/v1.1",
    "os-security-groups": _EXT + "securitygroups/api/v1.1",
    "os-server-start-stop": _EXT + "servers/api/v1.1",
    "os-used-limits": _EXT + "used_limits/api/v1.1",
    "os-user-data": _EXT + "userdata/api/v1.1",
    "os-volumes": _EXT + "volumes/api/v1.1",
    # Not in the spec's list, but prefixes Nova used in bodies; known here so
    # that a view borrowing one renders with Nova's namespace.
    "OS-EXT-SRV-ATTR": _EXT + "extended_server_attributes/api/v1.1",
    "OS-DCF": _EXT + "disk_config/api/v1.1",
    "OS-FLV-DISABLED": _EXT + "flavor_disabled/api/v1.1",
    "os-flavor-access": _EXT + "flavor_access/api/v2",
    "os-extended-volumes": _EXT + "extended_volumes/api/v1.1",
}

# Reading: which JSON prefix a namespaced XML name maps back to.
PREFIX_OF_NAMESPACE: Mapping[str, str] = {uri: alias for alias, uri in EXTENSION_NAMESPACES.items()}


def namespace_of_prefix(prefix: str) -> str:
    """The namespace URI for a JSON key prefix such as ``OS-EXT-STS``.

    A prefix we do not know still needs some URI to be well-formed XML; we make
    one up in Nova's pattern rather than fail the response.
    """
    return EXTENSION_NAMESPACES.get(prefix) or f"{_EXT}{prefix}/api/v2"


# Root element -> default namespace, where it is not the compute v2 one.
ROOT_NAMESPACES: Mapping[str, str] = {
    "versions": XMLNS_COMMON,
    "version": XMLNS_COMMON,
    "choices": XMLNS_COMMON,
    "extensions": XMLNS_COMMON,
    "extension": XMLNS_COMMON,
    "limits": XMLNS_COMMON,
    "snapshots": XMLNS_VOLUME,
    "snapshot": XMLNS_VOLUME,
}

BLOCK_STORAGE = "block_storage"
"""``View.shape`` of a body in the block storage API's shape (create volume's
answer, 4.4.13.3): written in that API's namespace whatever its root."""

# View shape -> default namespace, over the root element's.
SHAPE_NAMESPACES: Mapping[str, str] = {BLOCK_STORAGE: XMLNS_VOLUME}

# Root element -> extra prefixes to declare although nothing uses them (the
# spec's used-limits example declares os-used-limits on <limits>).
ROOT_EXTRA_NSMAP: Mapping[str, Mapping[str, str]] = {
    "limits": {"os-used-limits": EXTENSION_NAMESPACES["os-used-limits"]},
}


class ListShape(NamedTuple):
    """How a JSON list is spelled in XML."""

    container: str | None
    """Element wrapping the items; None puts the items straight in the parent."""
    item: str
    """Element name of each item."""


# JSON list key -> XML container and item names.
LISTS: Mapping[str, ListShape] = {
    "servers": ListShape("servers", "server"),
    "images": ListShape("images", "image"),
    "flavors": ListShape("flavors", "flavor"),
    "extensions": ListShape("extensions", "extension"),
    "versions": ListShape("versions", "version"),
    "choices": ListShape("choices", "version"),
    "values": ListShape(None, "version"),  # keystone-style {"versions": {"values": [...]}}
    "media-types": ListShape("media-types", "media-type"),
    "security_groups": ListShape("security_groups", "security_group"),
    "rules": ListShape("rules", "rule"),
    "security_group_rules": ListShape("security_group_rules", "security_group_rule"),
    "keypairs": ListShape("keypairs", "keypair"),
    "floating_ips": ListShape("floating_ips", "floating_ip"),
    "floating_ip_pools": ListShape("floating_ip_pools", "floating_ip_pool"),
    "availabilityZoneInfo": ListShape("availabilityZones", "availabilityZone"),
    "volumes": ListShape("volumes", "volume"),
    "snapshots": ListShape("snapshots", "snapshot"),
    "volume_types": ListShape("volume_types", "volume_type"),
    "attachments": ListShape("attachments", "attachment"),
    "volumeAttachments": ListShape("volumeAttachments", "volumeAttachment"),
    # Nova's os-extended-volumes: <os-extended-volumes:volume_attached id="..."/>
    # straight in <server>.
    "os-extended-volumes:volumes_attached": ListShape(None, "os-extended-volumes:volume_attached"),
    "instanceActions": ListShape("instanceActions", "instanceAction"),
    "events": ListShape("events", "event"),
    "networks": ListShape("networks", "network"),
    "personality": ListShape("personality", "file"),
    # limits: {"rate": [{"uri", "regex", "limit": [{...}]}]} ->
    # <rates><rate uri regex><limit .../></rate></rates>
    "rate": ListShape("rates", "rate"),
    "limit": ListShape(None, "limit"),
}


def list_shape(key: str) -> ListShape:
    """The XML shape of the JSON list under ``key`` (a plural guess if unlisted)."""
    shape = LISTS.get(key)
    if shape is not None:
        return shape
    if key.endswith("ies"):
        return ListShape(key, key[:-3] + "y")
    if key.endswith("s") and len(key) > 1:
        return ListShape(key, key[:-1])
    return ListShape(key, "item")


class ElementRule(NamedTuple):
    """Per-element hints for turning a JSON object into an XML element.

    By default every scalar becomes an attribute, every object a child element,
    every list a container of items; ``None`` becomes ``"None"`` (as in Nova and
    most of the spec's examples).
    """

    text: frozenset[str] = frozenset()
    """Scalar keys written as child elements with text instead of attributes."""
    all_text: bool = False
    """Write every scalar as a child element with text, except ``attrs``."""
    attrs: frozenset[str] = frozenset()
    """With ``all_text``, the scalars that stay attributes."""
    rename: Mapping[str, str] = MappingProxyType({})
    """JSON key -> XML name (``user_id`` is ``userId`` on a server)."""
    none: str | None = "None"
    """Text written for a JSON null; None leaves the attribute or child out."""
    empty_children: tuple[str, ...] = ()
    """Child elements always written (empty) when the JSON lacks them."""


DEFAULT_RULE = ElementRule()

_ALL_TEXT = ElementRule(all_text=True)
_RULE_LIKE = ElementRule(all_text=True, attrs=frozenset({"id", "parent_group_id"}))

# XML element name -> rule. Keyed by element (not JSON key) so that the same
# object renders alike wherever it appears: a server in a list or alone.
RULES: Mapping[str, ElementRule] = {
    "server": ElementRule(rename={"user_id": "userId", "tenant_id": "tenantId"}),
    "extension": ElementRule(text=frozenset({"description"})),
    "security_group": ElementRule(text=frozenset({"description"})),
    "rule": _RULE_LIKE,
    "security_group_rule": _RULE_LIKE,
    "group": _ALL_TEXT,
    "ip_range": _ALL_TEXT,
    "floating_ip": _ALL_TEXT,
    "keypair": _ALL_TEXT,
    "console": _ALL_TEXT,
    "quota_set": ElementRule(all_text=True, attrs=frozenset({"id"})),
    "quota_class_set": ElementRule(all_text=True, attrs=frozenset({"id"})),
    "fault": ElementRule(text=frozenset({"message", "details"}), none=None),
    "availabilityZone": ElementRule(
        rename={"zoneName": "name"}, none=None, empty_children=("metadata",)
    ),
    # Nova's volume types wrote extra specs as <extra_specs><key>value</key></extra_specs>.
    "extra_specs": _ALL_TEXT,
    # Nova's SimpleTenantUsageTemplate wrote every field as a child with text.
    "tenant_usage": _ALL_TEXT,
    "server_usage": _ALL_TEXT,
    "instanceAction": ElementRule(none=""),
    "event": ElementRule(none=""),
}

# JSON keys whose object is a map of data keys, not of field names, and the
# way each is written (see xml_writer).
KEYED_MAPS = frozenset({"metadata", "addresses", "absolute", "hosts"})

# ---- reading ------------------------------------------------------------

# XML container element -> item element (always read as a list).
READ_LISTS: Mapping[str, str] = {
    "personality": "file",
    "security_groups": "security_group",
    "networks": "network",
    "block_device_mapping": "mapping",
    "block_device_mapping_v2": "mapping",
}

# Elements always read as an object, even when empty.
READ_OBJECTS = frozenset({"OS-SCH-HNT:scheduler_hints", "scheduler_hints"})

# Item elements whose text is a field: <file path="/p">Y29udA==</file>.
READ_TEXT_FIELD: Mapping[str, str] = {"file": "contents"}

# Scheduler hints sit inside <server> in XML but beside "server" in JSON.
HINTS_KEY = "OS-SCH-HNT:scheduler_hints"
# Without the extension's namespace (or in another one) the element reads as
# plain "scheduler_hints"; both land under the JSON key.
HINTS_ALIASES = frozenset({HINTS_KEY, "scheduler_hints"})
