"""The one tree of errors that can reach a user or cross an RPC.

Each class names the HTTP status and the fault element of section 3.11 of the
spec that the API renders for it, and whether a retry may succeed. Errors cross
RPC by class name (see ``shared.rpc``): a known name is raised again on the
caller's side, anything else becomes ``RemoteError``.
"""

from __future__ import annotations

from typing import ClassVar

_REGISTRY: dict[str, type["ComputeError"]] = {}


class ComputeError(Exception):
    """Base of every error the API turns into a fault body."""

    http_status: ClassVar[int] = 500
    fault_name: ClassVar[str] = "computeFault"
    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, details: str | None = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers this fault carries (Retry-After for overLimit)."""
        return {}


def error_class(name: str) -> type[ComputeError] | None:
    """The registered error class called ``name``, if any."""
    return _REGISTRY.get(name)


_REGISTRY["ComputeError"] = ComputeError


class BadRequest(ComputeError):
    http_status, fault_name = 400, "badRequest"
    default_message = "The request is invalid."


class MalformedBody(BadRequest):
    default_message = "Malformed request body"


class Unauthorized(ComputeError):
    http_status, fault_name = 401, "unauthorized"
    default_message = "This server could not verify that you are authorized to access the document you requested."


class Forbidden(ComputeError):
    http_status, fault_name = 403, "forbidden"
    default_message = "Policy doesn't allow this operation to be performed."


class NotFound(ComputeError):
    http_status, fault_name = 404, "itemNotFound"
    default_message = "The resource could not be found."


class BadMethod(ComputeError):
    http_status, fault_name = 405, "badMethod"
    default_message = "The method is not allowed for the requested URL."


class Conflict(ComputeError):
    http_status, fault_name = 409, "conflictingRequest"
    default_message = "There was a conflict when trying to complete your request."


class OverLimit(ComputeError):
    """A limit was passed (section 3.11): a rate limit says when the next request
    fits (``retry_after``), a quota is a ``QuotaExceeded``."""

    http_status, fault_name = 413, "overLimit"
    default_message = "This request was rate-limited."
    # Errors rebuilt after crossing RPC skip __init__: the class default stands in.
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, details: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message, details=details)
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class QuotaExceeded(OverLimit):
    """A quota would be passed (instances, cores, RAM, volumes, metadata items,
    personality files, key pairs, security groups and rules, floating IPs).

    Section 3.11 gives every overLimit a ``Retry-After``. For a quota it is 0, as
    Nova sent it with its quota faults: no wait frees quota (deleting something,
    or a higher quota, does), so there is no time to name, and 0 tells a client
    that honours the header that waiting is pointless rather than making it
    sleep. Every quota fault is this class or a subclass, so all of them carry
    it, also when rebuilt after crossing RPC (by class name, without
    ``__init__``: the class attribute stands in).
    """

    default_message = "Quota exceeded."
    retry_after = 0


class BadMediaType(ComputeError):
    http_status, fault_name = 415, "badMediaType"
    default_message = "The request media type is not supported by this server."


class NotImplementedFault(ComputeError):
    http_status, fault_name = 501, "notImplemented"
    default_message = "The requested function is not implemented."


class ServiceUnavailable(ComputeError):
    http_status, fault_name, retryable = 503, "serviceUnavailable", True
    default_message = "The service is unavailable at this time."
    # Seconds a client should wait before trying again: about how long a
    # database or broker restart takes.
    retry_after: ClassVar[int] = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class BrokerUnavailable(ServiceUnavailable):
    """The message broker did not take a message (gone, restarting, or blocking)."""

    default_message = "The message broker is unavailable; try again later."


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached, or did not answer in time."""

    default_message = "The database is unavailable; try again later."


class RpcTimeout(ServiceUnavailable):
    """A call over RabbitMQ got no reply in time."""

    default_message = "A service did not answer in time."


class RemoteError(ComputeError):
    """An error of a type the caller does not know, raised in another service."""

    default_message = "An unexpected error occurred in a remote service."


# --- domain errors -------------------------------------------------------

class ServerNotFound(NotFound):
    def __init__(self, server_id: object) -> None:
        super().__init__(f"Instance {server_id} could not be found.")


class FlavorNotFound(NotFound):
    def __init__(self, flavor_id: object) -> None:
        super().__init__(f"Flavor {flavor_id} could not be found.")


class ImageNotFound(NotFound):
    def __init__(self, image_id: object) -> None:
        super().__init__(f"Image {image_id} could not be found.")


class VolumeNotFound(NotFound):
    def __init__(self, volume_id: object) -> None:
        super().__init__(f"Volume {volume_id} could not be found.")


class SnapshotNotFound(NotFound):
    def __init__(self, snapshot_id: object) -> None:
        super().__init__(f"Snapshot {snapshot_id} could not be found.")


class VolumeTypeNotFound(NotFound):
    def __init__(self, volume_type: object) -> None:
        super().__init__(f"Volume type {volume_type} could not be found.")


class NoValidHost(ComputeError):
    """The scheduler found no host for a build; recorded as the server's fault."""

    default_message = "No valid host was found."


class TaskStateConflict(Conflict):
    """A guarded update found the server in another task state than expected."""


class NoMoreFixedIps(BadRequest):
    """Every address of a network is taken (and, for a network that grows, no
    further subnet can be added: ``reason`` says why)."""

    def __init__(self, network_name: str, cidr: str, reason: str = "") -> None:
        tail = f": {reason}" if reason else ""
        super().__init__(f"No fixed IP addresses available for network {network_name} "
                         f"({cidr}){tail}.")


class SupernetExhausted(ComputeError):
    """The project supernet has no block of the subnet size left (an operator's problem)."""

    def __init__(self, supernet: str, index: int, prefixlen: int = 24) -> None:
        self.supernet = supernet
        self.prefixlen = prefixlen
        super().__init__(f"No /{prefixlen} subnet left in the project supernet {supernet} "
                         f"(subnet index {index}); widen [network] project_supernet.")
