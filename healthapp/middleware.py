from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class JapaneseFirstLocaleMiddleware(LocaleMiddleware):
    """Japanese unless the user chose another language (the language cookie set by /i18n/setlang/).

    The browser's Accept-Language is not followed: employees on company PCs set up in English must
    still get the Japanese screens their HR department documents, and switch when they want to.
    """

    def process_request(self, request: HttpRequest) -> None:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        supported = {code for code, _ in settings.LANGUAGES}
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class PrivateNoStoreMiddleware:
    """``Cache-Control: no-store, private`` on every response that is someone's: to a signed-in user, or
    one that reads, sets or varies on the session (or any cookie, or an Authorization header).

    Results, rosters and the API would otherwise stay in a shared PC's browser cache (the back button
    after logout) or a proxy. A view that sets Cache-Control itself keeps it. Listed right below
    WhiteNoise: static files are served above it and stay cacheable, while the session, CSRF and
    authentication middleware sit below it, so it sees the cookies and Vary they add.
    """

    VALUE = "no-store, private"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and self._is_private(request, response):
            response["Cache-Control"] = self.VALUE
        return response

    @staticmethod
    def _is_private(request: HttpRequest, response: HttpResponse) -> bool:
        session = getattr(request, "session", None)
        if session is not None and (session.accessed or session.modified):
            return True
        if response.cookies or "HTTP_AUTHORIZATION" in request.META:
            return True
        if "cookie" in {v.strip().lower() for v in response.get("Vary", "").split(",")}:
            return True
        # Last, as it may load the session: DRF sets request.user from other authenticators too.
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated)
