"""Request bodies: XML reads into the dict a JSON client sends; safety; media types."""

from __future__ import annotations

import pytest

from services.api.representation import decode_body, parse_xml
from shared.errors import BadMediaType, BadRequest, MalformedBody

XML = "application/xml"
V2 = 'xmlns="http://docs.openstack.org/compute/api/v2"'


def from_xml(text: str, root: str | None = None) -> dict:
    return decode_body(text.strip().encode(), XML, root)


# Each XML body the spec (or the brief) shows, with the JSON a client would send.
CASES = [
    pytest.param(
        """<server name="x" imageRef="1" flavorRef="2"><metadata><meta key="a">b</meta></metadata>
        <personality><file path="/p">Y29udA==</file></personality>
        <security_groups><security_group name="default"/></security_groups>
        <networks><network uuid="u" fixed_ip="10.0.0.2"/></networks></server>""",
        {"server": {"name": "x", "imageRef": "1", "flavorRef": "2", "metadata": {"a": "b"},
                    "personality": [{"path": "/p", "contents": "Y29udA=="}],
                    "security_groups": [{"name": "default"}],
                    "networks": [{"uuid": "u", "fixed_ip": "10.0.0.2"}]}},
        id="create-server",
    ),
    pytest.param(  # 4.4.1.6: <meta key value/> and extension attributes as plain strings
        """<server config_drive="false" flavorRef="{flavor_id}" imageRef="{image_id}"
        key_name="{keypair_name}" max_count="1" min_count="1" name="{name}" availability_zone="{az}">
        <security_groups><security_group name="{security_group_name}"/></security_groups>
        <networks><network uuid="{network_uuid}"/><network port="p1"/></networks>
        <metadata><meta key="key-1" value="value-1"/><meta key="key-2" value="value-2"/></metadata>
        </server>""",
        {"server": {"config_drive": "false", "flavorRef": "{flavor_id}", "imageRef": "{image_id}",
                    "key_name": "{keypair_name}", "max_count": "1", "min_count": "1", "name": "{name}",
                    "availability_zone": "{az}",
                    "security_groups": [{"name": "{security_group_name}"}],
                    "networks": [{"uuid": "{network_uuid}"}, {"port": "p1"}],
                    "metadata": {"key-1": "value-1", "key-2": "value-2"}}},
        id="create-server-meta-value-form",
    ),
    pytest.param(  # 4.4.10.1: hints move beside "server", as in JSON
        """<server xmlns="http://docs.openstack.org/compute/api/v1.1"
            xmlns:OS-SCH-HNT="http://docs.openstack.org/compute/ext/scheduler-hints/api/v2"
            name='new-server-test' imageRef='70a5' flavorRef='103'>
            <OS-SCH-HNT:scheduler_hints><near>eb99</near></OS-SCH-HNT:scheduler_hints>
        </server>""",
        {"server": {"name": "new-server-test", "imageRef": "70a5", "flavorRef": "103"},
         "OS-SCH-HNT:scheduler_hints": {"near": "eb99"}},
        id="create-server-scheduler-hints",
    ),
    pytest.param(
        """<server name="s"><scheduler_hints><different_host>a</different_host>
        <different_host>b</different_host></scheduler_hints></server>""",
        {"server": {"name": "s"}, "OS-SCH-HNT:scheduler_hints": {"different_host": ["a", "b"]}},
        id="create-server-hints-without-namespace-repeated",
    ),
    pytest.param(  # 4.4.21.1
        f"""<server flavorRef="101" imageRef="8dbf" name="server-example" {V2}>
        <user_data>SUNBZ0lDQWdEUW9p</user_data></server>""",
        {"server": {"flavorRef": "101", "imageRef": "8dbf", "name": "server-example",
                    "user_data": "SUNBZ0lDQWdEUW9p"}},
        id="create-server-user-data",
    ),
    pytest.param(
        "<server>\n    <name>new name</name>\n</server>",
        {"server": {"name": "new name"}},
        id="update-server",
    ),
    pytest.param('<reboot type="HARD"/>', {"reboot": {"type": "HARD"}}, id="reboot"),
    pytest.param(
        """<rebuild imageRef="img" name="n"><metadata><meta key="key-1">value-1</meta></metadata>
        <personality><file path="/etc/banner.txt">ICAg</file></personality></rebuild>""",
        {"rebuild": {"imageRef": "img", "name": "n", "metadata": {"key-1": "value-1"},
                     "personality": [{"path": "/etc/banner.txt", "contents": "ICAg"}]}},
        id="rebuild",
    ),
    pytest.param(
        '<createImage name="snap"><metadata><meta key="a">1</meta><meta key="b">2</meta></metadata></createImage>',
        {"createImage": {"name": "snap", "metadata": {"a": "1", "b": "2"}}},
        id="create-image",
    ),
    pytest.param('<createImage name="snap"/>', {"createImage": {"name": "snap"}}, id="create-image-bare"),
    pytest.param(  # 4.4.8.1 / 4.4.22.1
        f"""<addFloatingIp {V2}><address>
            15.185.230.99
        </address><fixed_address>10.10.10.22</fixed_address></addFloatingIp>""",
        {"addFloatingIp": {"address": "15.185.230.99", "fixed_address": "10.10.10.22"}},
        id="add-floating-ip",
    ),
    pytest.param(
        '<addFloatingIp address="15.185.230.99"/>',
        {"addFloatingIp": {"address": "15.185.230.99"}},
        id="add-floating-ip-attribute",
    ),
    pytest.param(
        f"<removeFloatingIp {V2}><address>1.2.3.4</address></removeFloatingIp>",
        {"removeFloatingIp": {"address": "1.2.3.4"}},
        id="remove-floating-ip",
    ),
    pytest.param('<os-getConsoleOutput length="50"/>', {"os-getConsoleOutput": {"length": "50"}},
                 id="console-output-attribute"),
    pytest.param(  # 4.4.4.1
        "<os-getConsoleOutput>\n<length>\n  50\n</length>\n</os-getConsoleOutput>",
        {"os-getConsoleOutput": {"length": "50"}},
        id="console-output-element",
    ),
    pytest.param('<os-getVNCConsole type="novnc" />', {"os-getVNCConsole": {"type": "novnc"}}, id="vnc"),
    pytest.param(f"<addSecurityGroup {V2}><name>sg-2</name></addSecurityGroup>",
                 {"addSecurityGroup": {"name": "sg-2"}}, id="add-security-group"),
    pytest.param(f'<rescue {V2} adminPass="MySecretPass"/>', {"rescue": {"adminPass": "MySecretPass"}},
                 id="rescue"),
    pytest.param(f"<unrescue {V2}/>", {"unrescue": None}, id="unrescue"),
    pytest.param(f"<os-start {V2}/>", {"os-start": None}, id="os-start"),
    pytest.param("<os-stop></os-stop>", {"os-stop": None}, id="os-stop"),
    pytest.param(
        """<metadata xmlns="http://docs.openstack.org/compute/api/v2">
        <meta key="key-1">value-1</meta><meta key="key-2">value 2 </meta></metadata>""",
        {"metadata": {"key-1": "value-1", "key-2": "value 2 "}},
        id="metadata",
    ),
    pytest.param("<metadata/>", {"metadata": {}}, id="metadata-empty"),
    pytest.param('<meta key="k">v</meta>', {"meta": {"k": "v"}}, id="meta-item"),
    pytest.param('<meta key="k" value="v"/>', {"meta": {"k": "v"}}, id="meta-item-value-form"),
    pytest.param('<meta key="k"/>', {"meta": {"k": ""}}, id="meta-item-empty"),
    pytest.param(
        '<keypair name="kp"><public_key>ssh-rsa AAAAB3 x@y</public_key></keypair>',
        {"keypair": {"name": "kp", "public_key": "ssh-rsa AAAAB3 x@y"}},
        id="keypair-import",
    ),
    pytest.param("<keypair>\n<name>keypair-2</name>\n</keypair>", {"keypair": {"name": "keypair-2"}},
                 id="keypair-create"),
    pytest.param(
        '<security_group name="sg"><description>\n  Security group 2\n</description></security_group>',
        {"security_group": {"name": "sg", "description": "Security group 2"}},
        id="security-group",
    ),
    pytest.param(  # 4.4.11.9
        f"""<security_group_rule {V2}><parent_group_id>17963</parent_group_id>
        <from_port>80</from_port><ip_protocol>tcp</ip_protocol><to_port>8080</to_port>
        <cidr>0.0.0.0/0</cidr></security_group_rule>""",
        {"security_group_rule": {"parent_group_id": "17963", "from_port": "80", "ip_protocol": "tcp",
                                 "to_port": "8080", "cidr": "0.0.0.0/0"}},
        id="security-group-rule",
    ),
    pytest.param(
        '<security_group_rule parent_group_id="1"><ip_protocol>tcp</ip_protocol><group_id>2</group_id>'
        "</security_group_rule>",
        {"security_group_rule": {"parent_group_id": "1", "ip_protocol": "tcp", "group_id": "2"}},
        id="security-group-rule-attribute",
    ),
    pytest.param(
        """<volume xmlns="http://docs.openstack.org/volume/api/v1"><display_name>vol-001</display_name>
        <size>30</size><metadata><meta key="contents">junk</meta></metadata></volume>""",
        {"volume": {"display_name": "vol-001", "size": "30", "metadata": {"contents": "junk"}}},
        id="volume",
    ),
    pytest.param(
        '<snapshot display_name="snap-001" volume_id="5217" force="true" />',
        {"snapshot": {"display_name": "snap-001", "volume_id": "5217", "force": "true"}},
        id="snapshot",
    ),
    pytest.param(
        '<volumeAttachment volumeId="5f80" device="/dev/vdd"/>',
        {"volumeAttachment": {"volumeId": "5f80", "device": "/dev/vdd"}},
        id="volume-attachment",
    ),
    pytest.param(
        """<?xml version="1.0" encoding="UTF-8"?>
        <server name="b" imageRef="" flavorRef="1"><block_device_mapping>
        <mapping volume_id="v1" device_name="vda" delete_on_termination="true"/></block_device_mapping></server>""",
        {"server": {"name": "b", "imageRef": "", "flavorRef": "1", "block_device_mapping": [
            {"volume_id": "v1", "device_name": "vda", "delete_on_termination": "true"}]}},
        id="boot-from-volume",
    ),
    pytest.param("<server><personality/><security_groups/></server>",
                 {"server": {"personality": [], "security_groups": []}}, id="empty-lists"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_xml_body_reads_as_the_json_a_client_sends(text: str, expected: dict) -> None:
    assert from_xml(text) == expected


def test_json_body() -> None:
    body = decode_body(b'{"server": {"name": "x", "min_count": 1}}', "application/json; charset=UTF-8")
    assert body == {"server": {"name": "x", "min_count": 1}}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/vnd.openstack.compute+json;version=2", None, ""],
)
def test_json_media_types_and_sniffing(content_type: str | None) -> None:
    assert decode_body(b' {"reboot": {"type": "SOFT"}}', content_type) == {"reboot": {"type": "SOFT"}}


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/xml", "application/vnd.openstack.compute+xml", None]
)
def test_xml_media_types_and_sniffing(content_type: str | None) -> None:
    assert decode_body(b'\n<reboot type="SOFT"/>', content_type) == {"reboot": {"type": "SOFT"}}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/html; charset=utf-8"]
)
def test_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(BadMediaType) as info:
        decode_body(b'{"server": {}}', content_type)
    assert info.value.http_status == 415
    assert content_type.split(";")[0] in info.value.message


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"server": ', "application/json"),
        (b'["server"]', "application/json"),
        (b'"server"', "application/json"),
        (b"", "application/json"),
        (b"   ", "application/xml"),
        (b"<server><name>x</server>", "application/xml"),
        (b"<server", "application/xml"),
        (b"not a document", None),
        (b"\xff\xfe{", "application/json"),
        (b'<metadata><meta>no key</meta></metadata>', "application/xml"),
    ],
)
def test_malformed_bodies(data: bytes, content_type: str | None) -> None:
    with pytest.raises(MalformedBody) as info:
        decode_body(data, content_type)
    assert info.value.http_status == 400
    assert info.value.fault_name == "badRequest"
    assert info.value.message == "Malformed request body"


def test_root_key_is_checked() -> None:
    assert decode_body(b'{"server": {}}', "application/json", root="server") == {"server": {}}
    with pytest.raises(MalformedBody):
        decode_body(b'{"servers": {}}', "application/json", root="server")
    with pytest.raises(MalformedBody):
        from_xml('<servers name="x"/>', root="server")
    # Scheduler hints beside "server" still satisfy root="server".
    body = from_xml("<server name='x'><scheduler_hints><a>b</a></scheduler_hints></server>", root="server")
    assert set(body) == {"server", "OS-SCH-HNT:scheduler_hints"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<server><name>&lol9;</name></server>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE server [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<server><name>&xxe;</name></server>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE server SYSTEM "http://127.0.0.1:9/evil.dtd">
<server name="x"/>"""

INTERNAL_ENTITY = b"""<!DOCTYPE meta [<!ENTITY v "expanded">]><meta key="k">&v;</meta>"""


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, INTERNAL_ENTITY],
    ids=["billion-laughs", "external-entity", "external-dtd", "internal-entity"],
)
def test_documents_with_a_doctype_are_refused_unexpanded(document: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_xml(document)
    # Nothing was expanded or read into the error either.
    assert "root:" not in str(info.value.details)
    assert "lol" not in str(info.value.details)
    assert "expanded" not in str(info.value.details)


def test_parser_itself_leaves_entities_unexpanded_and_reads_no_file() -> None:
    # Defence in depth below the DOCTYPE refusal: the parser would not expand.
    from lxml import etree

    from services.api.representation.xml_reader import _PARSER

    root = etree.fromstring(EXTERNAL_ENTITY, _PARSER)
    name = root[0]
    assert name.text is None
    assert [node.text for node in name] == ["&xxe;"]
    assert b"root:" not in etree.tostring(root)


def test_undeclared_entity_is_malformed() -> None:
    with pytest.raises(MalformedBody):
        parse_xml(b"<server><name>&xxe;</name></server>")


def test_character_references_and_namespaced_attributes() -> None:
    body = parse_xml(
        b'<server xmlns:OS-DCF="http://docs.openstack.org/compute/ext/disk_config/api/v1.1" '
        b'xmlns:other="urn:x" name="a&amp;b &#233;" OS-DCF:diskConfig="AUTO" other:x="1" xml:lang="en"/>'
    )
    assert body == {"server": {"name": "a&b \u00e9", "OS-DCF:diskConfig": "AUTO", "x": "1"}}


def test_comments_and_processing_instructions_are_ignored() -> None:
    body = parse_xml(b'<server name="x"><!-- note --><?pi data?><metadata><!-- c --><meta key="a">b</meta>'
                     b"</metadata></server>")
    assert body == {"server": {"name": "x", "metadata": {"a": "b"}}}


@pytest.mark.parametrize("depth", [33, 1000, 5000, 200_000])
@pytest.mark.parametrize("opener", ["[", '{"a": '])
def test_deep_json_nesting_is_malformed(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    data = ('{"server": ' + opener * (depth - 1) + "1" + closer * (depth - 1) + "}").encode()
    with pytest.raises(MalformedBody) as info:
        decode_body(data, "application/json")
    assert info.value.http_status == 400


def test_nesting_up_to_the_limit_is_read() -> None:
    from services.api.representation.bodies import MAX_DEPTH

    data = ('{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH).encode()
    assert decode_body(data, "application/json")["a"]["a"]


@pytest.mark.parametrize("depth", [33, 300, 5000])
def test_deep_xml_nesting_is_malformed(depth: int) -> None:
    data = ("<server>" + "<a>" * depth + "</a>" * depth + "</server>").encode()
    with pytest.raises(MalformedBody):
        decode_body(data, XML)


@pytest.mark.parametrize(
    "data",
    [
        rb'{"server": {"name": "a\u0000b"}}',
        rb'{"server": {"metadata": {"k\u0000": "v"}}}',
        rb'{"addSecurityGroup": {"name": "\u0000"}}',
        rb'{"server": {"networks": [{"uuid": "x"}, {"uuid": "\u0000"}]}}',
        rb'{"\u0000": 1}',
    ],
    ids=["value", "metadata-key", "action", "in-a-list", "root-key"],
)
def test_nul_anywhere_in_json_text_is_bad_request(data: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        decode_body(data, "application/json")
    assert info.value.http_status == 400 and info.value.fault_name == "badRequest"
    assert "NUL" in info.value.message


@pytest.mark.parametrize("data", [b'<server name="a&#0;b"/>', b'<server name="a\x00b"/>'])
def test_nul_cannot_reach_an_xml_body(data: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        decode_body(data, XML)
    assert info.value.http_status == 400
