"""Settings: defaults, then the TOML file, then the environment."""

from __future__ import annotations

import msgspec
import pytest

from shared.config import AmqpSettings, DatabaseSettings, load


class _Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    amqp: AmqpSettings


def test_defaults_without_file_or_environment(monkeypatch):
    monkeypatch.delenv("NIMBUS_CONFIG", raising=False)
    s = load(_Settings, environ={})
    assert s.database.url == DatabaseSettings().url and s.amqp.rpc_timeout_s == 30.0


def test_file_then_environment_wins(tmp_path, monkeypatch):
    cfg = tmp_path / "nimbus.toml"
    cfg.write_text('[database]\nurl = "postgresql://file/db"\npool_max = 3\n'
                   '[amqp]\nrpc_timeout_s = 5\n')
    monkeypatch.setenv("NIMBUS_CONFIG", str(cfg))
    s = load(_Settings, environ={"NIMBUS_DATABASE_URL": "postgresql://env/db"})
    assert s.database.url == "postgresql://env/db"   # environment over file
    assert s.database.pool_max == 3                   # file over default, converted from TOML
    assert s.amqp.rpc_timeout_s == 5.0


def test_bad_value_stops_with_the_section_named(monkeypatch):
    monkeypatch.delenv("NIMBUS_CONFIG", raising=False)
    with pytest.raises(SystemExit, match=r"\[amqp\]"):
        load(_Settings, environ={"NIMBUS_AMQP_RPC_TIMEOUT_S": "-1"})
    with pytest.raises(SystemExit, match=r"\[database\]"):
        load(_Settings, environ={"NIMBUS_DATABASE_POOL_MAX": "many"})
