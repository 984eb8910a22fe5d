"""The operators' admin (/ops/admin/): django-otp's admin site, in Japanese, hidden from tenants' users.

healthapp/urls.py turns the default ``admin.site`` into ``OpsAdminSite`` (the apps' ``@admin.register``
already went to that instance). The helpers below let the ModelAdmins label model fields in Japanese
where the field has no ``verbose_name``: adding one to the model would need a migration for a label.
"""

from __future__ import annotations

from functools import update_wrapper

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


def hide_from_tenant_users(request: HttpRequest) -> None:
    """Someone logged in who is not staff (an employee, an HR admin…) gets the site's 404, as for a page
    that does not exist: the ops admin is not advertised to tenants' users. Anonymous visitors still get
    the admin's login (operators log in there), and staff still need a verified second factor."""
    user = request.user
    if user.is_authenticated and not user.is_staff:
        raise Http404


# Registered by the libraries, taken off: raw rows nobody should edit by hand (a TOTP device's key and
# clock drift, axes' failure counters, auth groups the project does not use), and whose deletion would
# leave no audit trace. A login's second factors and lockout are reset from its own page, with a
# confirmation and an audit event (accounts.admin.UserAdmin).
RAW_TABLES = ("otp_totp.TOTPDevice", "otp_static.StaticDevice", "otp_email.EmailDevice", "axes.AccessAttempt",
              "axes.AccessFailureLog", "axes.AccessLog", "auth.Group")  # fmt: skip


def unregister_raw_tables(site: admin.AdminSite) -> None:
    for label in RAW_TABLES:
        model = apps.get_model(label)
        if site.is_registered(model):
            site.unregister(model)


class OpsAdminSite(OTPAdminSite):
    """OTPAdminSite (is_staff and a verified second factor; MfaRequiredMiddleware sends a logged-in operator
    to enrolment or verification first) whose every view, the login included, answers a logged-in
    non-staff user with 404 (``hide_from_tenant_users``) instead of "you are not authorized" on a login form."""

    site_header = _("healthapp 運用管理")
    site_title = _("healthapp 運用管理")
    index_title = _("運用管理")
    empty_value_display = _("（なし）")

    def admin_view(self, view, cacheable=False):
        checked = super().admin_view(view, cacheable)  # permission (else the login), CSRF, never_cache

        def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            hide_from_tenant_users(request)
            return checked(request, *args, **kwargs)

        return update_wrapper(inner, checked)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        hide_from_tenant_users(request)  # the login is the one view admin_view does not wrap
        return super().login(request, extra_context)

    def password_change(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # One password change for everyone: the site's page applies the privileged length, records
        # auth.password.changed and clears the short-password flag; the admin's own would skip all that.
        return redirect("accounts:password-change")


class ObjectTitleMixin:
    """Heads the change and history pages of one object with ``object_title(obj)`` instead of ``str(obj)``,
    which stays short and free of personal data for logs. The title shows the stored object (not the
    unsaved values of a form sent back with errors)."""

    def object_title(self, obj) -> str:
        return str(obj)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context = {"subtitle": self.object_title(obj), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            title = _("変更履歴: %(object)s") % {"object": self.object_title(obj)}
            extra_context = {"title": title, **(extra_context or {})}
        return super().history_view(request, object_id, extra_context)


def titled_filter(field: str, title: str, filter_class: type[admin.FieldListFilter]) -> tuple:
    """A ``list_filter`` entry for ``field`` headed ``title``, for a model field without a verbose_name:
    ``titled_filter("is_active", _("有効"), admin.BooleanFieldListFilter)``."""

    class TitledFilter(filter_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    TitledFilter.__name__ = TitledFilter.__qualname__ = f"Titled{filter_class.__name__}"
    return (field, TitledFilter)
