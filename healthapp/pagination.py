"""Pages of the API's lists: a tenant's roster runs to 100,000 entries, each decrypted to be shown, and an
import job carries up to 1,000 findings; no list is answered whole."""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination


class InvalidPage(NotFound):
    """A page past the end: 404 as DRF answers it, under a code of its own (``not_found`` says the thing
    itself is not there, or not yours to see)."""

    default_code = "invalid_page"


class ApiPagination(PageNumberPagination):
    """``?page=N`` (from 1) and ``?page_size=`` up to 500; the answer is ``{count, next, previous, results}``."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise InvalidPage(exc.detail) from None
