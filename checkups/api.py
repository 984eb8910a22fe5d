"""API of the checkup import: /api/v1/checkup-imports/ and the provider mappings /api/v1/checkup-mappings/.

The same services and policy as the pages (checkups.import_views): ``roster.manage`` over the whole tenant,
a preview first, a confirm that acknowledges the signed records a correction sends back to the physician.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import TenantScopedViewSet
from accounts.labels import Perm
from checkups import imports
from checkups.models import CheckupCsvMapping
from healthapp import jobs
from healthapp.csvsafe import csv_response
from healthapp.job_api import CsvRenderer, JobProgressSerializer, refuse_oversize
from healthapp.models import Job


class CheckupImportFindingSerializer(serializers.Serializer):
    """One error or warning of a job: where and why, never a value."""

    row = serializers.IntegerField(allow_null=True, help_text="entry number (CSV: line, header = 1; XML: document)")
    source = serializers.CharField(help_text="the ZIP entry it concerns, if any")
    column = serializers.CharField(help_text="item key, identity field or CSV header")
    code = serializers.CharField()
    message = serializers.CharField(help_text="the reason, as the page and the error report give it")


class CheckupImportMappingRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()


class CheckupImportSerializer(serializers.ModelSerializer):
    """A checkup import job: its preview (counts, errors, warnings, rechecks) or how its apply went."""

    # The mapping's name comes from the context's ``mappings`` ({id: provider}, read once per request).

    number = serializers.IntegerField(source="label_number", read_only=True, help_text="the job's number in the tenant")
    source = serializers.SerializerMethodField()
    mapping = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)
    errors = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    can_apply = serializers.SerializerMethodField()
    rechecks = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "number", "state", "source", "mapping", "rows_total", "rows_done", "percent", "counts", "errors",
            "warnings", "error_code", "file_sha256", "file_size", "can_apply", "rechecks", "created_at", "finished_at",
        ]  # fmt: skip

    def get_source(self, job: Job) -> str:
        return job.options.get("source", "")

    @extend_schema_field(CheckupImportMappingRefSerializer(allow_null=True))
    def get_mapping(self, job: Job) -> dict[str, Any] | None:
        """The provider mapping a CSV job was read with; null for XML or once the mapping was deleted."""
        mapping_id = job.options.get("mapping_id")
        if not mapping_id:
            return None
        known = self.context.get("mappings")
        if known is None:
            known = dict(CheckupCsvMapping.objects.filter(pk=mapping_id).values_list("pk", "provider"))
        return {"id": mapping_id, "provider": known[mapping_id]} if mapping_id in known else None

    @extend_schema_field(CheckupImportFindingSerializer(many=True))
    def get_errors(self, job: Job) -> list[dict]:
        """What is not imported (an entry with any error imports nothing), and file-level findings."""
        return [{**e, "message": imports.row_error_message(e)} for e in job.errors if e["code"] not in imports.WARNINGS]

    @extend_schema_field(CheckupImportFindingSerializer(many=True))
    def get_warnings(self, job: Job) -> list[dict]:
        """Columns, item codes or ZIP files not read; the rest of the entry is imported."""
        return [{**e, "message": imports.row_error_message(e)} for e in job.errors if e["code"] in imports.WARNINGS]

    def get_can_apply(self, job: Job) -> bool:
        return imports.can_apply(job)

    def get_rechecks(self, job: Job) -> int:
        """Corrections of records with a signed physician's opinion: applying sends them back for a new one."""
        return job.counts.get("rechecks", 0)


class CheckupImportSummarySerializer(CheckupImportSerializer):
    """A job in the list: its findings (up to 1,000 each) are read one job at a time, ``GET …/{id}/``."""

    class Meta(CheckupImportSerializer.Meta):
        fields = [f for f in CheckupImportSerializer.Meta.fields if f not in ("errors", "warnings")]


class CheckupUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="MHLW XML (one document or the ZIP bundle) or a provider CSV")
    source = serializers.ChoiceField(choices=list(imports.SOURCES))
    mapping = serializers.IntegerField(
        required=False, allow_null=True, help_text="id of a saved provider mapping (checkup-mappings); for csv"
    )


class CheckupApplySerializer(serializers.Serializer):
    acknowledge_rechecks = serializers.BooleanField(
        default=False,
        help_text="required (true) when the preview's corrections send signed records back to the physician",
    )


class CheckupMappingSerializer(serializers.ModelSerializer):
    mapping = serializers.DictField(
        child=serializers.CharField(), read_only=True, help_text="CSV column header → item key or identity field"
    )

    class Meta:
        model = CheckupCsvMapping
        fields = ["id", "provider", "mapping", "updated_at"]


class CheckupImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Upload checkup results (validated as a dry run), read the preview, confirm to apply."""

    permission = Perm.ROSTER_MANAGE
    tenant_wide = True  # as the pages (checkups.import_views.PAGES): a file may name anyone in the tenant
    serializer_class = CheckupImportSerializer
    queryset = Job.all_tenants.none()  # the schema reads the model from it; requests use scoped_queryset
    parser_classes = [MultiPartParser, FormParser]  # a form without its file: 400 "file", not 415

    def scoped_queryset(self):
        found = Job.objects.filter(kind=Job.Kind.CHECKUP).order_by("-created_at", "-pk")
        return found.defer(*Job.FINDINGS) if self.action == "list" else found

    def get_serializer_class(self):
        return CheckupImportSummarySerializer if self.action == "list" else CheckupImportSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        # The tenant's few mappings once per request, not once per job of a list.
        mappings = dict(CheckupCsvMapping.objects.values_list("pk", "provider"))
        return {**super().get_serializer_context(), "mappings": mappings}

    def _job(self, job: Job) -> dict:
        job.refresh_from_db()
        return self.get_serializer(job).data

    @extend_schema(request=CheckupUploadSerializer, responses={201: CheckupImportSerializer})
    def create(self, request: Request) -> Response:
        refuse_oversize(request, max_bytes=settings.CHECKUP_IMPORT_MAX_BYTES)
        upload = CheckupUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        job = imports.checkup_import_start(
            upload=data["file"], file_name=data["file"].name, source=data["source"], mapping_id=data.get("mapping"),
            acting_user=request.user,
        )  # fmt: skip
        return Response(self._job(job), status=status.HTTP_201_CREATED)

    @extend_schema(request=CheckupApplySerializer, responses={202: CheckupImportSerializer})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser, MultiPartParser])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Apply the preview. Refused (acknowledge_required) while ``rechecks`` is not acknowledged."""
        job = self.get_object()
        confirm = CheckupApplySerializer(data=request.data)
        confirm.is_valid(raise_exception=True)
        job = imports.checkup_import_confirm(
            job=job, acting_user=request.user, acknowledged=confirm.validated_data["acknowledge_rechecks"]
        )
        return Response(self._job(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: CheckupImportSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Discard a preview instead of applying it; its file is deleted. Only a validated job."""
        job = jobs.job_cancel(job_id=self.get_object().pk)
        return Response(self._job(job))

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CsvRenderer])
    def errors(self, request: Request, pk: str | None = None):
        """The error report the page offers (errors.csv): entry, ZIP entry, column, code, reason; never a value."""
        job = self.get_object()
        return csv_response(
            f"checkup-import-{job.label_number}-errors.csv",  # the page's name
            imports.error_report_header(),
            imports.error_report_rows(job),
        )

    @extend_schema(responses=JobProgressSerializer)
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        return Response(jobs.job_status(self.get_object()))


class CheckupMappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's saved provider CSV mappings (read only; edited on the mapping page)."""

    permission = Perm.ROSTER_MANAGE
    tenant_wide = True  # as the mapping page (PAGES.require)
    serializer_class = CheckupMappingSerializer
    queryset = CheckupCsvMapping.all_tenants.none()

    def scoped_queryset(self):
        return CheckupCsvMapping.objects.order_by("provider")
