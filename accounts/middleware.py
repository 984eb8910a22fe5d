from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.validators import PRIVILEGED_MIN_LENGTH, needs_privileged_length
from healthapp.errors import json_error

SESSION_STARTED = "_session_started"
SESSION_LAST_SEEN = "_session_last_seen"


# Set once a session, by MfaRequiredMiddleware (inside the tenant context, where labels can be read): this
# session's user holds a label over others' data, so the privileged idle limit applies as for their roles.
SESSION_PRIVILEGED = "_session_privileged"


def idle_timeout_for(user, session=None) -> float:
    strict = user.is_privileged or bool(session is not None and session.get(SESSION_PRIVILEGED))
    limit = settings.SESSION_IDLE_TIMEOUT_PRIVILEGED if strict else settings.SESSION_IDLE_TIMEOUT
    return limit.total_seconds()


class SessionTimeoutMiddleware:
    """Ends a session after idle time (30 min; 15 min for privileged roles) or absolute age (12 h)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            started = request.session.get(SESSION_STARTED, now)
            last_seen = request.session.get(SESSION_LAST_SEEN, now)
            expired = (now - started) > settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds() or (
                now - last_seen
            ) > idle_timeout_for(user, request.session)
            if expired:
                logout(request)
                message = _("一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。")
                if request.path.startswith("/api/"):
                    return json_error(401, "session_expired", message)
                messages.info(request, message)
                return redirect_to_login(request.get_full_path())
            request.session[SESSION_STARTED] = started
            request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)


# What a user who still owes a second factor may reach: enrolment, verification, leaving, language.
MFA_EXEMPT_PREFIXES = (
    "/accounts/mfa/setup/",
    "/accounts/mfa/verify/",
    "/accounts/mfa/email/",
    "/accounts/logout/",
    "/i18n/",
    "/static/",
)
MFA_EXEMPT_UNTIL = "_mfa_not_required_until"
MFA_EXEMPT_RECHECK_SECONDS = 300


class MfaRequiredMiddleware:
    """Until a user who needs MFA (accounts.mfa.mfa_required) has verified a second factor in this
    session, every page and API call — the OTP admin site included — sends them to enrolment or
    verification (pages) or answers 403 (API). Runs inside the tenant context (after TenantMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from accounts import mfa, policy

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        if user.is_verified():
            if SESSION_PRIVILEGED not in request.session:  # once a session: the idle limit of the labels held
                request.session[SESSION_PRIVILEGED] = policy.privileged(user)
            return self.get_response(request)
        if request.path.startswith(MFA_EXEMPT_PREFIXES):
            # The enrolment and code pages show no menu to the pages that would only send them back here.
            request.mfa_pending = request.path.startswith("/accounts/mfa/") and mfa.mfa_required(user)
            return self.get_response(request)
        # Employees without MFA are most requests: remember "not required" for a few minutes rather
        # than asking the database on every request.
        now = time.time()
        # Not for anyone holding a label over others' data: a label given mid-session binds at once.
        if not policy.privileged(user) and request.session.get(MFA_EXEMPT_UNTIL, 0) > now:
            return self.get_response(request)
        if not mfa.mfa_required(user):
            request.session[MFA_EXEMPT_UNTIL] = now + MFA_EXEMPT_RECHECK_SECONDS
            return self.get_response(request)
        request.session.pop(MFA_EXEMPT_UNTIL, None)
        if request.path.startswith("/api/"):
            message = _("多要素認証が必要です。画面からログインして確認コードを入力してください。")
            return json_error(403, "mfa_required", message)
        target = "accounts:mfa-verify" if mfa.has_confirmed_device(user) else "accounts:mfa-setup"
        next_url = request.get_full_path() if request.method == "GET" else "/"
        return redirect(f"{reverse(target)}?{urlencode({'next': next_url})}")


# Set at login, the one moment the plaintext password is at hand, when the password is shorter than the
# privileged minimum (any login: an employee may be given a label over others' data — 産業医, 人事 by a
# LabelGrant — later in the same session). Only this boolean is kept, never the password or its length;
# while it is set and the user is privileged (accounts.policy.privileged, asked on each request), every page
# asks for a new password; changing it (accounts.auth_views.PasswordChangeView) clears it.
PASSWORD_SHORT = "_password_short"  # noqa: S105 - a session key, not a password

# What a user who must change their password may reach: the change itself, leaving, the second factor
# (enrolment with its backup codes, verification: MfaRequiredMiddleware asks for it first), language.
PASSWORD_CHANGE_EXEMPT_PREFIXES = (
    "/accounts/password/change/",
    "/accounts/logout/",
    "/accounts/mfa/setup/",
    "/accounts/mfa/verify/",
    "/accounts/mfa/email/",
    "/accounts/mfa/backup-codes/",
    "/i18n/",
    "/static/",
)


def flag_short_password(request: HttpRequest, password: str) -> None:
    """Called by the login page once the password step has succeeded (accounts.views.LoginView)."""
    if len(password) < PRIVILEGED_MIN_LENGTH:
        request.session[PASSWORD_SHORT] = True


class PasswordChangeRequiredMiddleware:
    """A privileged user whose password is short (PASSWORD_SHORT, set at login) is sent to the password
    change page from every page, and every API call answers 403, until they have changed it: from their
    login on, or from the request after a label made them privileged. Runs after MfaRequiredMiddleware
    and the tenant context: the second factor comes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not request.session.get(PASSWORD_SHORT):
            return self.get_response(request)
        if request.path.startswith(PASSWORD_CHANGE_EXEMPT_PREFIXES) or not needs_privileged_length(user):
            return self.get_response(request)
        message = _("権限ラベルが付与されたため、パスワードを%(min)d文字以上に変更してください。") % {
            "min": PRIVILEGED_MIN_LENGTH
        }
        if request.path.startswith("/api/"):
            return json_error(403, "password_change_required", message)
        messages.warning(request, message)
        return redirect("accounts:password-change")
