"""Errors of the identity API, rendered Keystone's way.

Keystone's error body is ``{"error": {"code", "title", "message"}}``, not the
compute API's fault body, so these are not part of ``shared.errors``.
"""

from __future__ import annotations

from typing import ClassVar


class IdentityError(Exception):
    """Base of every error the identity app turns into an error body."""

    code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    default_message: ClassVar[str] = (
        "An unexpected error prevented the server from fulfilling your request.")

    def __init__(self, message: str | None = None, *, retry_after_s: int | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after_s = retry_after_s
        """Sent as ``Retry-After``: when asking again may succeed."""
        super().__init__(self.message)


class BadRequest(IdentityError):
    code, title = 400, "Bad Request"
    default_message = ("The request you have made requires a valid body; "
                       "the server could not comply with the request since it is "
                       "either malformed or otherwise incorrect.")


class Unauthorized(IdentityError):
    """Bad credentials, unknown or expired token, or no access to the scope."""

    code, title = 401, "Unauthorized"
    default_message = "The request you have made requires authentication."


class Forbidden(IdentityError):
    code, title = 403, "Forbidden"
    default_message = "You are not authorized to perform the requested action."


class NotFound(IdentityError):
    code, title = 404, "Not Found"
    default_message = "Could not find the requested resource."


class TokenNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Could not find token.")


class TooManyRequests(IdentityError):
    """A login refused by the throttle, before any password was checked."""

    code, title = 429, "Too Many Requests"

    def __init__(self, retry_after_s: int) -> None:
        unit = "second" if retry_after_s == 1 else "seconds"
        super().__init__("Too many login attempts from this address or for this user; "
                         f"try again in {retry_after_s} {unit}.", retry_after_s=retry_after_s)


class ServiceUnavailable(IdentityError):
    code, title = 503, "Service Unavailable"
    default_message = "The service is busy; try again shortly."


class Conflict(IdentityError):
    code, title = 409, "Conflict"
    default_message = "Conflict occurred attempting to store the resource."


# --- raised by the management helpers ------------------------------------

class ProjectNotFound(NotFound):
    def __init__(self, name_or_id: str) -> None:
        super().__init__(f"Could not find project: {name_or_id}.")


class RoleNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Could not find role: {name}.")


class DuplicateName(Conflict):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"Duplicate entry: a {kind} named {name!r} already exists.")
