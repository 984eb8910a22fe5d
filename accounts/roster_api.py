"""API of the roster import: /api/v1/roster-imports/ (same services and policy as the pages)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roster_import
from accounts.api import TenantScopedViewSet
from accounts.labels import Perm
from healthapp import jobs
from healthapp.csvsafe import csv_response
from healthapp.job_api import CsvRenderer, JobProgressSerializer, refuse_oversize
from healthapp.models import Job


class RosterImportFindingSerializer(serializers.Serializer):
    """One error of a preview: where and why, never a value."""

    row = serializers.IntegerField(allow_null=True, help_text="CSV record number (header = 1)")
    column = serializers.CharField(help_text="the column's key (employee_number, birth_date, …)")
    code = serializers.CharField()
    message = serializers.CharField(help_text="the reason, as the page and the error report give it")


class RosterImportSerializer(serializers.ModelSerializer):
    number = serializers.IntegerField(source="label_number", read_only=True, help_text="the job's number in the tenant")
    mode = serializers.SerializerMethodField()
    can_apply = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)
    new_offices = serializers.SerializerMethodField(help_text="offices the apply creates (the first 50)")
    new_departments = serializers.SerializerMethodField(help_text="[office, department] the apply creates")
    created_offices = serializers.SerializerMethodField(help_text="once done: the new offices it created")
    created_departments = serializers.SerializerMethodField(help_text="once done: [office, department] it created")
    logins_turned_off = serializers.SerializerMethodField(help_text="active logins the preview's deactivations end")
    leaves_no_org_admin = serializers.SerializerMethodField(help_text="applying leaves no active 組織管理者")
    errors = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "number", "state", "mode", "rows_total", "rows_done", "percent", "counts", "errors", "error_code",
            "file_sha256", "file_size", "can_apply", "new_offices", "new_departments", "created_offices",
            "created_departments", "logins_turned_off", "leaves_no_org_admin", "created_at", "finished_at",
        ]  # fmt: skip

    @extend_schema_field(RosterImportFindingSerializer(many=True))
    def get_errors(self, job: Job) -> list[dict]:
        return [{**e, "message": roster_import.error_message(e["code"])} for e in job.errors]

    def get_mode(self, job: Job) -> str:
        return job.options.get("mode", "")

    def get_new_offices(self, job: Job) -> list[str]:
        return job.plan.get("new_offices", []) if job.state == Job.State.VALIDATED else []

    def get_new_departments(self, job: Job) -> list[list[str]]:
        return job.plan.get("new_departments", []) if job.state == Job.State.VALIDATED else []

    def get_created_offices(self, job: Job) -> list[str]:
        return self._created(job)[0]

    def get_created_departments(self, job: Job) -> list[list[str]]:
        return self._created(job)[1]

    def _created(self, job: Job) -> tuple[list[str], list[list[str]]]:
        """Both fields from one pair of queries."""
        known = self.context.setdefault("_created", {})
        if job.pk not in known:
            known[job.pk] = roster_import.places_created(job)
        return known[job.pk]

    def get_logins_turned_off(self, job: Job) -> int:
        return roster_import.logins_turned_off(job).count

    def get_leaves_no_org_admin(self, job: Job) -> bool:
        return roster_import.logins_turned_off(job).last_org_admin

    def get_can_apply(self, job: Job) -> bool:
        return roster_import.can_apply(job)


# What the list leaves out: read one job at a time.
_ONE_AT_A_TIME = ("errors", "new_offices", "new_departments", "created_offices", "created_departments",
                  "logins_turned_off", "leaves_no_org_admin")  # fmt: skip


class RosterImportSummarySerializer(RosterImportSerializer):
    """A job in the list: its errors (up to 1,000) and what its preview changes are read one job at a time,
    ``GET …/{id}/``."""

    class Meta(RosterImportSerializer.Meta):
        fields = [f for f in RosterImportSerializer.Meta.fields if f not in _ONE_AT_A_TIME]


class RosterUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    mode = serializers.ChoiceField(choices=[roster_import.PARTIAL, roster_import.FULL], default=roster_import.PARTIAL)
    create_offices = serializers.BooleanField(default=False)
    clear_blanks = serializers.BooleanField(default=False, help_text="a blank cell clears the stored value")


class RosterApplySerializer(serializers.Serializer):
    acknowledge = serializers.BooleanField(
        default=False, help_text="required (true) when the preview deactivates anyone: they lose roster entry and login"
    )


class RosterImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Upload a roster CSV (validated as a dry run), read the preview, confirm to apply."""

    permission = Perm.ROSTER_MANAGE
    tenant_wide = True
    serializer_class = RosterImportSerializer
    queryset = Job.all_tenants.none()  # the schema reads the model from it; requests use scoped_queryset
    parser_classes = [MultiPartParser, FormParser]  # a form without its file: 400 "file", not 415

    def scoped_queryset(self):
        found = Job.objects.filter(kind=Job.Kind.ROSTER).order_by("-created_at", "-pk")
        return found.defer(*Job.FINDINGS) if self.action == "list" else found

    def get_serializer_class(self):
        return RosterImportSummarySerializer if self.action == "list" else RosterImportSerializer

    @extend_schema(request=RosterUploadSerializer, responses={201: RosterImportSerializer})
    def create(self, request: Request) -> Response:
        refuse_oversize(request, max_bytes=settings.ROSTER_IMPORT_MAX_BYTES)
        upload = RosterUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        job = roster_import.roster_import_start(
            upload=data["file"], file_name=data["file"].name, mode=data["mode"],
            create_offices=data["create_offices"], clear_blanks=data["clear_blanks"], acting_user=request.user,
        )  # fmt: skip
        job.refresh_from_db()
        return Response(RosterImportSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RosterApplySerializer, responses={202: RosterImportSerializer})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser, MultiPartParser])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        confirm = RosterApplySerializer(data=request.data)
        confirm.is_valid(raise_exception=True)
        job = roster_import.roster_import_confirm(
            job=job, acting_user=request.user, acknowledged=confirm.validated_data["acknowledge"]
        )
        job.refresh_from_db()
        return Response(RosterImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: RosterImportSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Discard a preview instead of applying it; its file is deleted. Only a validated job."""
        job = jobs.job_cancel(job_id=self.get_object().pk)
        return Response(RosterImportSerializer(job).data)

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CsvRenderer])
    def errors(self, request: Request, pk: str | None = None):
        job = self.get_object()
        return csv_response(
            f"roster-import-{job.label_number}-errors.csv",  # the page's name (#n)
            roster_import.error_report_header(),
            roster_import.error_report_rows(job),
        )

    @extend_schema(responses=JobProgressSerializer)
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        return Response(jobs.job_status(self.get_object()))
