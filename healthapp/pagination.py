"""Pages of the API's lists: a tenant's roster runs to 100,000 entries, each decrypted to be shown, and an
import job carries up to 1,000 findings; no list is answered whole."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class ApiPagination(PageNumberPagination):
    """``?page=N`` (from 1) and ``?page_size=`` up to 500; the answer is ``{count, next, previous, results}``."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
