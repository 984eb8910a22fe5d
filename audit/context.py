"""What the audit log knows about the current request: set by audit.middleware, read by audit.record."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class RequestMeta:
    request: HttpRequest
    request_id: str
    client_ip: str
    user_agent: str

    @property
    def user(self):
        # Read at record time: the user changes during a login or logout request.
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None


_current: contextvars.ContextVar[RequestMeta | None] = contextvars.ContextVar("audit_request", default=None)


def current_request_meta() -> RequestMeta | None:
    return _current.get()


def set_request_meta(meta: RequestMeta | None) -> contextvars.Token:
    return _current.set(meta)


def reset_request_meta(token: contextvars.Token) -> None:
    _current.reset(token)
