"""The status-code profile: the table of disagreements and the setting that picks one."""

from __future__ import annotations

import pytest

from services.api.settings import ApiSettings
from services.api.status_codes import CODES, Op, code
from shared.config import load_section

# Every operation where the spec's "Normal Response Code(s)" and Nova 2014.2 differ,
# written out again so that a change of the table has to change this too.
EXPECTED = {
    Op.CREATE_KEYPAIR: (202, 200),
    Op.CREATE_SECURITY_GROUP: (202, 200),
    Op.CREATE_SECURITY_GROUP_RULE: (202, 200),
    Op.CREATE_VOLUME: (202, 200),
    Op.CREATE_SNAPSHOT: (202, 200),
    Op.ATTACH_VOLUME: (202, 200),
    Op.UNRESCUE: (200, 202),
}


def test_table_lists_every_disagreement_with_both_codes() -> None:
    assert {op: (c.spec, c.nova) for op, c in CODES.items()} == EXPECTED
    assert set(CODES) == set(Op)


@pytest.mark.parametrize("op", list(Op))
def test_each_profile_answers_its_own_code(op: Op) -> None:
    spec, nova = EXPECTED[op]
    assert code(op, "spec") == spec
    assert code(op, "nova") == nova
    assert spec != nova


def test_setting_defaults_to_spec_and_reads_the_environment() -> None:
    assert ApiSettings().status_codes == "spec"
    loaded = load_section(ApiSettings, "api", environ={"NIMBUS_API_STATUS_CODES": "nova"})
    assert loaded.status_codes == "nova"


@pytest.mark.parametrize("value", ["novo", "Nova", "", "spec,nova"])
def test_a_typo_fails_at_start(value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        load_section(ApiSettings, "api", environ={"NIMBUS_API_STATUS_CODES": value})
    assert "status_codes" in str(exc.value)
