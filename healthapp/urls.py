from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from accounts.api import GrantViewSet, MembersViewSet, MeView, TeamViewSet
from checkups.api import CheckupImportViewSet, CheckupMappingViewSet
from healthapp.admin_site import OpsAdminSite, unregister_raw_tables

# The operators' admin asks for a verified second factor as well (MfaRequiredMiddleware sends them to
# verification first; the OTP admin site refuses an unverified session on its own), and answers a logged-in
# tenant user with the site's 404 (healthapp.admin_site). The apps registered their ModelAdmins on this
# instance already, so its class is swapped rather than a new site made.
admin.site.__class__ = OpsAdminSite
unregister_raw_tables(admin.site)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # one way to ask for CSV (Accept: text/csv), not a 500 on ".csv"
router.register("members", MembersViewSet, basename="member")
router.register("grants", GrantViewSet, basename="grant")
router.register("teams", TeamViewSet, basename="team")
# The checkup import (checkups/api.py): as its pages, roster.manage over the whole tenant.
router.register("checkup-imports", CheckupImportViewSet, basename="checkup-import")
router.register("checkup-mappings", CheckupMappingViewSet, basename="checkup-mapping")

api_v1 = [
    path("me/", MeView.as_view(), name="me"),
    *router.urls,
]

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("checkups.urls")),
    path("", include("checkups.import_urls")),
    path("audit/", include("audit.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ops/admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

handler404 = "healthapp.errors.page_not_found"
