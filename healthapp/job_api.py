"""What the importers' APIs share (accounts/roster_api.py, checkups/api.py): the progress a client polls and
the error report as CSV."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer

from healthapp import jobs
from healthapp.csvsafe import csv_bytes
from healthapp.job_views import over_upload_limit
from healthapp.models import Job


def refuse_oversize(request: HttpRequest, *, max_bytes: int) -> None:
    """Before the body is read: an upload too large to be kept is refused as the size it is
    (``file_too_large``), not as a missing file."""
    if over_upload_limit(request):
        raise jobs.file_too_large(max_bytes)


class JobProgressSerializer(serializers.Serializer):
    """What the progress bar polls (healthapp.jobs.job_status): no personal data, no file name."""

    id = serializers.IntegerField()
    number = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Job.State.choices)
    state_label = serializers.CharField()
    rows_total = serializers.IntegerField()
    rows_done = serializers.IntegerField()
    percent = serializers.IntegerField()
    counts = serializers.DictField()
    error_code = serializers.CharField()
    finished = serializers.BooleanField()


class CsvRenderer(BaseRenderer):
    """Lets a client that asks for ``Accept: text/csv`` (as the schema documents the error report) have it:
    the view answers with the CSV itself; a refusal on the way (404, 403) comes as CSV too, its code and
    message under a header (what the JSON error body says)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        error = data.get("error", {}) if isinstance(data, dict) else {}
        return csv_bytes(["code", "message"], [[error.get("code", ""), error.get("message", "")]])
