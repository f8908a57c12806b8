"""The fake host's own state: FakeHost, its on-disk format and the operator's CLI,
against a real temporary directory."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import msgspec
import pytest

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.fake_host import FakeHost, GuestRecord
from shared.contracts.common import FlavorSpec, ImageSpec, Port
from shared.states import PowerState
from tests.unit.compute_agent.guests import guest_spec, replace_spec

HOST = "fake-1"
FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")
REPO = Path(__file__).resolve().parents[3]


def _spec(**kw) -> GuestSpec:
    port = Port(id=uuid.uuid4(), network_id=uuid.uuid4(), network_name="private",
                address="10.0.0.9", mac="fa:16:3e:00:00:09")
    fields = {"server_id": uuid.uuid4(), "name": "vm", "flavor": FLAVOR, "image": IMAGE,
              "ports": (port,), **kw}
    return guest_spec(**fields)


@pytest.fixture(params=["disk", "memory"])
def host(request, tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path if request.param == "disk" else None, HOST)


def _domain(tmp_path: Path, server_id: uuid.UUID) -> Path:
    return tmp_path / HOST / "domains" / str(server_id)


# --------------------------------------------------------------------------- the class


def test_define_keeps_the_spec_without_the_password_and_refuses_a_second(host):
    spec = _spec(admin_pass="s3cret")
    record = host.define(spec, lines=["hello"])
    assert record is not None and record.power_state is PowerState.NOSTATE
    assert host.guest(spec.server_id) == record
    assert record.spec == replace_spec(spec, admin_pass=None)
    assert host.ids() == [spec.server_id]
    assert host.console(spec.server_id).endswith("] hello\n")
    assert host.define(spec) is None  # one guest per id
    assert host.guest(spec.server_id) == record


def test_define_refuses_what_does_not_fit_counting_every_guest(host):
    host.define(_spec(), ram_limit_mb=2048)
    host.create(uuid.uuid4(), name="orphan", ram_mb=512)
    with pytest.raises(DriverError, match="not enough memory"):
        host.define(_spec(), ram_limit_mb=2048)
    fits = _spec(flavor=replace_spec(FLAVOR, ram_mb=512))
    assert host.define(fits, ram_limit_mb=2048) is not None


def test_ram_in_use_goes_with_the_guests_that_leave(host):
    first = host.define(_spec(), ram_limit_mb=2048)
    host.define(_spec(), ram_limit_mb=2048)
    with pytest.raises(DriverError, match="not enough memory"):
        host.define(_spec(), ram_limit_mb=2048)
    host.undefine(first.server_id)
    assert host.define(_spec(), ram_limit_mb=2048) is not None


def test_a_console_in_memory_keeps_its_last_lines_only():
    from services.compute_agent.drivers.fake_host.memory import CONSOLE_LIMIT
    host = FakeHost(None, HOST)
    record = host.define(_spec(), lines=["created"])
    lines = CONSOLE_LIMIT // 20  # about 27 bytes each: more than the limit holds
    for i in range(lines):
        host.log(record.server_id, f"line {i:06d}")
    console = host.console(record.server_id)
    assert CONSOLE_LIMIT - 30 < len(console.encode()) <= CONSOLE_LIMIT
    assert "created" not in console
    assert console.startswith("[") and "] line " in console.splitlines()[0]  # whole lines
    assert console.endswith(f"] line {lines - 1:06d}\n")


def test_update_applies_to_the_record_as_it_is_now_and_only_to_its_incarnation(host):
    spec = _spec()
    first = host.define(spec)
    # Two actors read the guest; each changes one thing: neither loses the other's.
    assert host.update(spec.server_id, first.incarnation, rescued=True) is not None
    now = host.update(spec.server_id, first.incarnation, power_state=PowerState.RUNNING,
                      lines=["up"])
    assert now is not None and now.rescued and now.power_state is PowerState.RUNNING
    assert host.console(spec.server_id).endswith("] up\n")
    # Destroyed and created again under the same id: the old incarnation's changes miss.
    assert host.undefine(spec.server_id, "not-it") is None
    assert host.undefine(spec.server_id, first.incarnation) is not None
    second = host.define(spec)
    assert host.update(spec.server_id, first.incarnation, power_state=PowerState.CRASHED) is None
    assert host.guest(spec.server_id) == second


def test_operator_commands_move_the_guest_and_tell_its_console(host):
    sid = uuid.uuid4()
    created = host.create(sid, name="orphan", ram_mb=256)
    assert created.power_state is PowerState.RUNNING and created.spec.flavor.ram_mb == 256
    assert "orphan login:" in host.console(sid)
    with pytest.raises(DriverError, match="already has"):
        host.create(sid, name="again")

    assert host.stop(sid).power_state is PowerState.SHUTDOWN
    assert _last(host.console(sid), 2) == ["The system is going down for power off NOW!",
                                           "reboot: Power down"]
    with pytest.raises(DriverError, match="is shutdown"):
        host.crash(sid)  # a guest that is not running cannot panic
    assert host.start(sid).power_state is PowerState.RUNNING
    with pytest.raises(DriverError, match="is running"):
        host.start(sid)
    crashed = host.crash(sid)
    assert crashed.power_state is PowerState.CRASHED and int(crashed.power_state) == 6
    assert "Kernel panic - not syncing" in host.console(sid)
    assert host.start(sid).power_state is PowerState.RUNNING
    assert host.console(sid).count("Booting the kernel.") == 3

    host.destroy(sid)
    assert host.guest(sid) is None and host.console(sid) is None and host.ids() == []
    for command in (host.stop, host.crash, host.start, host.destroy):
        with pytest.raises(DriverError, match="no guest"):
            command(sid)


def _last(console: str, n: int) -> list[str]:
    """The text of the console's last ``n`` lines, without their time stamps."""
    return [line.split("] ", 1)[1] for line in console.splitlines()[-n:]]


def test_log_of_a_guest_that_is_gone_is_dropped(host):
    sid = uuid.uuid4()
    host.log(sid, "nobody hears this")
    assert host.console(sid) is None and host.ids() == []


# --------------------------------------------------------------------------- the format


def test_the_format_on_disk(tmp_path: Path):
    host = FakeHost(tmp_path, HOST)
    spec = _spec(admin_pass="s3cret", user_data=b"#!/bin/sh\n")
    record = host.define(spec, power_state=PowerState.RUNNING, lines=["a", "b"])
    domain = _domain(tmp_path, spec.server_id)
    assert sorted(p.name for p in domain.iterdir()) == ["console.log", "state.json"]
    state = msgspec.json.decode((domain / "state.json").read_bytes())
    assert state["format"] == 2 and state["power_state"] == 1 and state["rescued"] is False
    assert state["spec"]["config"]["admin_pass"] is None and state["incarnation"] == record.incarnation
    assert msgspec.json.decode((domain / "state.json").read_bytes(), type=GuestRecord) == record
    lines = (domain / "console.log").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["a", "b"]
    assert all(line.startswith("[") and line[13] == "]" for line in lines)
    assert b"s3cret" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    # Owner-only: the record holds the guest's user data.
    assert (domain / "state.json").stat().st_mode & 0o077 == 0


def test_an_unknown_format_is_refused_not_misread(tmp_path: Path):
    host = FakeHost(tmp_path, HOST)
    spec = _spec()
    host.define(spec)
    state = _domain(tmp_path, spec.server_id) / "state.json"
    state.write_bytes(state.read_bytes().replace(b'"format":2', b'"format":3'))
    with pytest.raises(DriverError, match="format 3"):
        host.guest(spec.server_id)


def test_writes_cut_short_by_a_kill_leave_the_old_state(tmp_path: Path):
    """A kill -9 mid-write leaves a temp file; mid-create or mid-remove, a dot
    directory. None of them is a guest or changes one, and the next write goes on."""
    host = FakeHost(tmp_path, HOST)
    spec = _spec()
    record = host.define(spec, power_state=PowerState.RUNNING)
    domain = _domain(tmp_path, spec.server_id)
    (domain / "state.json.tmp").write_bytes(b'{"format":2,"spec":{"serv')  # cut short
    half_made, half_gone = uuid.uuid4(), uuid.uuid4()
    for leftover in (f".new-{half_made}", f".gone-{half_gone}"):
        (domain.parent / leftover).mkdir()
        (domain.parent / leftover / "state.json").write_bytes(b'{"form')

    again = FakeHost(tmp_path, HOST)  # the restarted agent's
    assert again.guest(spec.server_id) == record and again.ids() == [spec.server_id]
    assert again.guest(half_made) is None and again.guest(half_gone) is None
    assert again.stop(spec.server_id).power_state is PowerState.SHUTDOWN
    assert not (domain / "state.json.tmp").exists()
    assert FakeHost(tmp_path, HOST).guest(spec.server_id).power_state is PowerState.SHUTDOWN
    # The same ids can be created and removed again over what was left.
    assert again.create(half_made, name="made").server_id == half_made
    again.destroy(half_made)
    again.destroy(spec.server_id)
    assert not domain.exists() and again.ids() == []
    assert not (domain.parent / f".new-{half_made}").exists()


def test_a_guest_list_sees_another_writer_at_once(tmp_path: Path):
    mine, theirs = FakeHost(tmp_path, HOST), FakeHost(tmp_path, HOST)
    first = mine.create(uuid.uuid4(), name="first").server_id
    assert mine.ids() == [first]
    second = theirs.create(uuid.uuid4(), name="second").server_id
    theirs.destroy(first)
    assert mine.ids() == [second]
    # The RAM in use (a spawn's capacity check) follows too.
    with pytest.raises(DriverError, match="not enough memory"):
        mine.define(_spec(), ram_limit_mb=1024)
    theirs.destroy(second)
    assert mine.define(_spec(), ram_limit_mb=1024) is not None


def test_changes_wait_for_the_writer_holding_the_host_lock(tmp_path: Path):
    domains = tmp_path / HOST / "domains"
    domains.mkdir(parents=True)
    held = os.open(domains, os.O_RDONLY | os.O_DIRECTORY)  # another writer's
    fcntl.flock(held, fcntl.LOCK_EX)
    host = FakeHost(tmp_path, HOST)
    sid = uuid.uuid4()
    done = threading.Event()

    def create() -> None:
        host.create(sid, name="late")
        done.set()

    threading.Thread(target=create, daemon=True).start()
    try:
        # A negative can only be shown over some time: the create must not get through.
        assert not done.wait(0.3), "created while another writer held the host's lock"
        assert host.guest(sid) is None
    finally:
        os.close(held)  # and with it the lock
    assert done.wait(10)
    assert host.guest(sid).power_state is PowerState.RUNNING


# --------------------------------------------------------------------------- the CLI


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.compute_agent.drivers.fake_host",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_cli_acts_on_the_host_out_of_band(tmp_path: Path):
    host = FakeHost(tmp_path, HOST)
    base = ["--state-dir", str(tmp_path), "--host", HOST]
    sid = uuid.uuid4()
    done = _cli(tmp_path, *base, "create", str(sid), "--name", "orphan", "--ram-mb", "300")
    assert done.returncode == 0, done.stderr
    assert host.guest(sid).power_state is PowerState.RUNNING
    assert host.guest(sid).spec.flavor.ram_mb == 300

    listed = _cli(tmp_path, *base, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert rows == [[str(sid), "running", "300", "orphan"]]

    for command, state in (("stop", PowerState.SHUTDOWN), ("start", PowerState.RUNNING),
                           ("crash", PowerState.CRASHED)):
        done = _cli(tmp_path, *base, command, str(sid))
        assert done.returncode == 0, done.stderr
        assert host.guest(sid).power_state is state
    assert "Kernel panic" in host.console(sid)

    refused = _cli(tmp_path, *base, "stop", str(sid))
    assert refused.returncode == 1 and "is crashed" in refused.stderr

    # The agent's own settings name the host's place when the flags are left out.
    env = {"NIMBUS_FAKE_STATE_DIR": str(tmp_path), "NIMBUS_COMPUTE_HOST": HOST}
    done = _cli(tmp_path, "destroy", str(sid), env=env)
    assert done.returncode == 0, done.stderr
    assert host.guest(sid) is None
    gone = _cli(tmp_path, "destroy", str(sid), env=env)
    assert gone.returncode == 1 and "no guest" in gone.stderr
    assert _cli(tmp_path, *base, "stop", "not-a-uuid").returncode == 2
