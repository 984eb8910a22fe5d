"""The client's address, as far as our own proxies vouch for it."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """Return the client address: REMOTE_ADDR, or the X-Forwarded-For entry our Nth proxy added.

    Only the last TRUSTED_PROXY_COUNT entries of X-Forwarded-For were written by proxies we run;
    anything to their left came from the client and is ignored, so a forged header changes nothing.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return _valid_or_empty(remote)
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < count:
        # Fewer hops than proxies we run: the request bypassed a proxy; trust only the socket.
        return _valid_or_empty(remote)
    return _valid_or_empty(forwarded[-count])


def _valid_or_empty(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""
