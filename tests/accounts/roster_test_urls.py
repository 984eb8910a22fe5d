"""The project's URLs with accounts.roster_urls included in the ``accounts`` namespace, exactly as the
one line in accounts/urls.py will do it. Used by the roster-import tests until that line lands."""

from django.urls import include, path

from accounts import urls as accounts_urls
from healthapp.urls import urlpatterns as project_patterns

accounts_patterns = [*accounts_urls.urlpatterns, path("", include("accounts.roster_urls"))]
urlpatterns = [
    path("", include((accounts_patterns, "accounts"))),
    *[p for p in project_patterns if getattr(p, "namespace", None) != "accounts"],
]
