from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found

from healthapp.errors import json_error
from tenants.context import NoTenantError, tenant_context


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
            if request.path.startswith("/api/"):  # a script is told why, in the API's shape, not sent to a page
                message = _("ご利用の組織の契約が停止または終了しているため、利用できません。")
                return json_error(403, "tenant_inactive", message)
            return redirect("accounts:login")
        with tenant_context(tenant):
            return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A tenant's page opened without a tenant (an operator following a link to チーム, say): the query
        refused, as it must; the person sees the page does not exist for them, not a system error. With a
        tenant set the same error is a bug and stays one."""
        user = getattr(request, "user", None)
        if isinstance(exception, NoTenantError) and getattr(user, "tenant_id", None) is None:
            return page_not_found(request, Http404())
        return None


# Paths a refused user may still reach: leaving, changing language, and static files.
ALLOWLIST_EXEMPT_PREFIXES = ("/accounts/logout/", "/i18n/", "/static/")


class IpAllowlistMiddleware:
    """Refuses every page and API call of a non-employee whose client address (healthapp.net.client_ip,
    i.e. what our own proxies vouch for) is outside the tenant's allowlist; each refusal is audited.

    Runs after TenantMiddleware, inside the tenant's context.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from healthapp.net import client_ip
        from tenants import allowlist

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith(ALLOWLIST_EXEMPT_PREFIXES):
            return self.get_response(request)
        # The tenant's list first (one small read): most tenants have none, and then whether the user is
        # bound to it (their labels, read from the database) need not be asked on every request.
        networks = allowlist.allowlist_networks() if user.tenant_id is not None else []
        if not networks or not allowlist.allowlist_applies_to(user):
            return self.get_response(request)
        if allowlist.address_permitted(client_ip(request), networks):
            return self.get_response(request)
        api = request.path.startswith("/api/")
        allowlist.allowlist_record_denial(user=user, area="api" if api else "page")
        message = _(
            "このIPアドレスからは利用できません。社内ネットワークから接続するか、組織管理者にお問い合わせください。"
        )
        if api:
            return json_error(403, "ip_not_allowed", message)
        return render(request, "accounts/allowlist/denied.html", {"message": message}, status=403)
