"""One error shape for the API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tenants.context import NoTenantError


class AppError(Exception):
    """A business-rule failure a user can act on. ``message`` is shown as is (translated)."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, AppError):
        return _body(exc.status_code, exc.code, exc.message, exc.details)
    if isinstance(exc, Http404 | NoTenantError):
        return _body(404, "not_found", _("見つかりません。"))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return _body(response.status_code, "invalid", _("入力内容を確認してください。"), response.data)
    code = getattr(exc, "default_code", "error")
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    return _body(response.status_code, str(code), str(detail))


def _body(status_code: int, code: str, message: str, details=None) -> Response:
    return Response({"error": {"code": code, "message": message, "details": details or {}}}, status=status_code)


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    """The same error shape, answered by a middleware (before any DRF view runs)."""
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status_code)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: an address under /api/ that matches no endpoint answers in the API's shape, as every
    other API error does; a page keeps the site's 404 page."""
    if request.path.startswith("/api/"):
        return json_error(404, "not_found", _("見つかりません。"))
    return defaults.page_not_found(request, exception)
