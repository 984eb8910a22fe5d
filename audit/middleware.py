from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from audit.context import RequestMeta, reset_request_meta, set_request_meta
from audit.services import clean_user_agent
from healthapp.net import client_ip

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_for(request: HttpRequest) -> str:
    """A fresh uuid4, or the proxy's X-Request-ID when we run proxies (a client could forge it otherwise)."""
    if settings.TRUSTED_PROXY_COUNT > 0:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        if _REQUEST_ID.match(given):
            return given
    return uuid.uuid4().hex


class AuditRequestMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and lets audit.record see the request's
    client address, user agent and user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = RequestMeta(
            request=request,
            request_id=request_id_for(request),
            client_ip=client_ip(request),
            user_agent=clean_user_agent(request.META.get("HTTP_USER_AGENT", "")),
        )
        request.audit_request_id = meta.request_id
        token = set_request_meta(meta)
        try:
            response = self.get_response(request)
        finally:
            reset_request_meta(token)
        response["X-Request-ID"] = meta.request_id
        return response
