"""URLs of the roster import. Included from accounts/urls.py (namespace ``accounts``):

path("", include("accounts.roster_urls")),
"""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts import roster_views
from accounts.roster_api import RosterImportViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # one way to ask for CSV (Accept: text/csv), not a 500 on ".csv"
router.register("roster-imports", RosterImportViewSet, basename="roster-import-api")

urlpatterns = [
    path("roster/import/", roster_views.roster_import_upload, name="roster-import"),
    path("roster/import/template.csv", roster_views.roster_import_template, name="roster-import-template"),
    path("roster/import/<int:job_id>/", roster_views.roster_import_job, name="roster-import-job"),
    path("roster/import/<int:job_id>/status/", roster_views.roster_import_status, name="roster-import-status"),
    path("roster/import/<int:job_id>/apply/", roster_views.roster_import_apply, name="roster-import-apply"),
    path("roster/import/<int:job_id>/cancel/", roster_views.roster_import_cancel, name="roster-import-cancel"),
    path("roster/import/<int:job_id>/errors.csv", roster_views.roster_import_errors, name="roster-import-errors"),
    path("api/v1/", include(router.urls)),
]
