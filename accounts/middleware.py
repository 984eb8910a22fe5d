from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

SESSION_STARTED = "_session_started"
SESSION_LAST_SEEN = "_session_last_seen"


def idle_timeout_for(user) -> float:
    limit = settings.SESSION_IDLE_TIMEOUT_PRIVILEGED if user.is_privileged else settings.SESSION_IDLE_TIMEOUT
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
            ) > idle_timeout_for(user)
            if expired:
                logout(request)
                message = _("一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。")
                if request.path.startswith("/api/"):
                    return JsonResponse({"error": {"code": "session_expired", "message": message}}, status=401)
                messages.info(request, message)
                return redirect_to_login(request.get_full_path())
            request.session[SESSION_STARTED] = started
            request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)
