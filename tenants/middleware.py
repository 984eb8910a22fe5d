from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from tenants.context import tenant_context


class TenantMiddleware:
    """Runs the rest of the request inside the logged-in user's tenant (ORM + PostgreSQL RLS).

    A user of a suspended or terminated tenant is logged out. Operators have no tenant: any tenant
    query they trigger raises instead of returning rows.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.tenant_id is None:
            return self.get_response(request)
        tenant = user.tenant
        if not tenant.is_active:
            logout(request)
            return redirect("accounts:login")
        with tenant_context(tenant):
            return self.get_response(request)
