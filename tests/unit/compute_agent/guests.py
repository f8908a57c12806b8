"""Building a GuestSpec in tests: config fields (``GuestConfig``) given flat."""

from __future__ import annotations

from typing import Any

import msgspec

from services.compute_agent.drivers import GuestConfig, GuestSpec

CONFIG_FIELDS = {f.name for f in msgspec.structs.fields(GuestConfig)}


def guest_spec(**kw: Any) -> GuestSpec:
    config = {k: kw.pop(k) for k in list(kw) if k in CONFIG_FIELDS}
    config.setdefault("hostname", kw.get("name", "vm"))
    return GuestSpec(config=GuestConfig(**config), **kw)


def replace_spec(obj: Any, **kw: Any) -> Any:
    """``msgspec.structs.replace`` that takes a GuestSpec's config fields flat."""
    if not isinstance(obj, GuestSpec):
        return msgspec.structs.replace(obj, **kw)
    config = {k: kw.pop(k) for k in list(kw) if k in CONFIG_FIELDS}
    if config:
        kw["config"] = msgspec.structs.replace(obj.config, **config)
    return msgspec.structs.replace(obj, **kw)
