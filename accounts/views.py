from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts import policy, registration
from accounts.forms import LoginForm
from accounts.labels import Perm
from accounts.middleware import flag_short_password
from accounts.selectors import member_for_user, roster_summary, teams_for_user
from healthapp.net import client_ip


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if registration.login_address_blocked(ip=client_ip(request)):
            # Refused before the password is read: an unbound form (binding it would authenticate).
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")[:254]})
            blocked = ADDRESS_BLOCKED % {"minutes": max(1, settings.LOGIN_FAILURE_WINDOW // 60)}
            return self.render_to_response(self.get_context_data(form=form, blocked=blocked), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)  # logged in: the session is the new one
        flag_short_password(self.request, form.cleaned_data.get("password") or "")
        return response

    def form_invalid(self, form):
        if form.data.get("username") and form.data.get("password"):  # a wrong password, not a blank form
            registration.login_failed_from(ip=client_ip(self.request))
        return super().form_invalid(form)


ADDRESS_BLOCKED = _(
    "この接続元からのログインの失敗が多いため、しばらく受け付けません。%(minutes)d分ほど待ってから、もう一度お試しください。"
)


class LogoutView(auth_views.LogoutView):
    template_name = "accounts/logged_out.html"


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """What django-axes shows once an account is locked: plain words, no hint whether it exists."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "accounts/locked.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    in_tenant = user.tenant_id is not None
    context = {
        "member": member_for_user(user=user),
        # tenant-wide counts, for those who keep the whole roster
        "summary": roster_summary() if in_tenant and policy.can_tenant_wide(user, Perm.ROSTER_MANAGE) else None,
        "teams": [pair for pair in teams_for_user(user=user) if pair[1]] if in_tenant else [],
        "notices": [],  # the notices issue fills this
    }
    return render(request, "accounts/home.html", context)
