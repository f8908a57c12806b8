"""Typed application keys: what the compute app holds for its handlers."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.api.settings import Settings
from shared.outbox import Relay
from shared.rpc import RpcClient

POOL = web.AppKey("pool", asyncpg.Pool)
RPC = web.AppKey("rpc", RpcClient)
SETTINGS = web.AppKey("settings", Settings)
RELAY = web.AppKey("relay", Relay)
