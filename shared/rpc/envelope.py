"""What travels next to a message: the reply of a call, errors, headers."""

from __future__ import annotations

import msgspec

from shared.errors import ComputeError, RemoteError, error_class
from shared.retry import is_transient, unavailable

REQUEST_ID_HEADER = "x-compute-request-id"

encoder = msgspec.json.Encoder()


class RemoteFault(msgspec.Struct, frozen=True, kw_only=True):
    """An error raised by the handler of a call, as it crosses the broker."""

    type: str
    message: str
    details: str | None = None


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    # Raw keeps the result undecoded until the caller names its type (msgspec
    # does not take Raw inside a union, hence the JSON null default).
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: RemoteFault | None = None


reply_decoder = msgspec.json.Decoder(Reply)


def fault_from(exc: BaseException) -> RemoteFault:
    """What the caller of a call learns of ``exc``: our own errors as they are; a
    transient failure (database or broker unreachable) as ServiceUnavailable; anything
    else as a RemoteError whose text says nothing of the internals (the handler's
    service logged them), since it may end up in a tenant's fault."""
    if isinstance(exc, ComputeError):
        return RemoteFault(type=type(exc).__name__, message=exc.message, details=exc.details)
    if is_transient(exc):
        fault = unavailable(exc)
        return RemoteFault(type=type(fault).__name__, message=fault.message)
    return RemoteFault(type="RemoteError", message=RemoteError.default_message)


def raise_fault(fault: RemoteFault) -> None:
    """Raise the fault as its own class when this side knows it, else RemoteError."""
    cls = error_class(fault.type) or RemoteError
    exc = cls.__new__(cls)
    ComputeError.__init__(exc, fault.message, details=fault.details)
    raise exc
