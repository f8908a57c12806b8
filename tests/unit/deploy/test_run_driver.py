"""make up remembers the hypervisor driver of its run, so a plain ``make up`` after
``make up-real`` brings the agents back on the hypervisor their guests are on, and
asking for another driver on the same run is refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.supervisor import run_driver


def test_the_first_choice_is_remembered_and_reused(tmp_path: Path):
    assert run_driver(tmp_path, "libvirt") == "libvirt"
    assert run_driver(tmp_path, None) == "libvirt"  # plain make up
    assert run_driver(tmp_path, "libvirt") == "libvirt"


def test_a_fresh_run_defaults_to_the_fake_driver(tmp_path: Path):
    assert run_driver(tmp_path, None) == "fake"
    assert (tmp_path / "compute-driver").read_text() == "fake\n"


def test_another_driver_on_the_same_run_is_refused(tmp_path: Path):
    run_driver(tmp_path, None)
    with pytest.raises(ValueError, match="use the fake driver, not libvirt"):
        run_driver(tmp_path, "libvirt")
    assert (tmp_path / "compute-driver").read_text() == "fake\n"  # unchanged
