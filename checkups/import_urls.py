"""URLs of the checkup import (健診結果の取り込み), namespace ``checkup_import``. Included from
healthapp/urls.py: ``path("", include("checkups.import_urls"))``."""

from django.urls import path

from checkups import import_views

app_name = "checkup_import"

urlpatterns = [
    path("checkups/import/", import_views.upload, name="upload"),
    path("checkups/import/mappings/", import_views.mappings, name="mappings"),
    path("checkups/import/mappings/<int:mapping_id>/", import_views.mappings, name="mapping-edit"),
    path("checkups/import/sample.csv", import_views.sample_csv, name="sample-csv"),
    path("checkups/import/<int:job_id>/", import_views.job_page, name="job"),
    path("checkups/import/<int:job_id>/status/", import_views.status, name="status"),
    path("checkups/import/<int:job_id>/apply/", import_views.apply, name="apply"),
    path("checkups/import/<int:job_id>/cancel/", import_views.cancel, name="cancel"),
    path("checkups/import/<int:job_id>/errors.csv", import_views.errors_csv, name="errors"),
]
