"""Pages of the checkup import (健診結果の取り込み): upload (MHLW XML / ZIP or provider CSV), preview,
apply, progress, error report, and the per-provider CSV column mappings.

Thin: the work is in checkups.imports. Every page needs ``roster.manage`` (the people who load the
roster load the checkup files); without it, and for another tenant's job, the answer is the same 404.
"""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts import policy
from accounts.labels import Perm
from checkups import imports
from checkups.models import CheckupCsvMapping
from healthapp import jobs
from healthapp.csvsafe import csv_response
from healthapp.errors import AppError
from healthapp.models import Job

PREVIEW_ERRORS = 200  # the page lists this many; the CSV report has them all
SAMPLE_CSV = Path(__file__).resolve().parent / "samples" / "sample_checkups.csv"


class CheckupUploadForm(forms.Form):
    file = forms.FileField(label=_("健診結果ファイル"))
    source = forms.ChoiceField(
        label=_("形式"),
        choices=[
            (imports.SOURCE_XML, _("特定健診 XML（1件の XML ファイルまたは ZIP 一式）")),
            (imports.SOURCE_CSV, _("健診機関の CSV（列の対応を使う）")),
        ],
        initial=imports.SOURCE_XML,
        widget=forms.RadioSelect,
    )
    mapping = forms.TypedChoiceField(label=_("列の対応（健診機関）"), coerce=int, required=False, empty_value=None)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The tenant's mappings, read per request (a queryset at import time would have no tenant).
        self.fields["mapping"].choices = [("", "---------")] + [
            (m.pk, m.provider) for m in CheckupCsvMapping.objects.order_by("provider")
        ]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("source") == imports.SOURCE_CSV and not data.get("mapping"):
            self.add_error("mapping", _("CSV の列の対応（健診機関）を選んでください。"))
        return data


class MappingForm(forms.Form):
    provider = forms.CharField(label=_("健診機関名"), max_length=100)
    mapping = forms.CharField(
        label=_("列の対応"),
        widget=forms.Textarea(attrs={"rows": 16}),
        help_text=_("1行に「CSV の列名,項目キー」（例: 社員番号,employee_number / 受診日,exam_date / HbA1c,hba1c）"),
    )

    def mapping_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.cleaned_data["mapping"].splitlines():
            column, sep, target = line.rpartition(",")
            if sep and column.strip():
                out[column.strip()] = target.strip()
        return out


def require_manager(user) -> None:
    if not policy.can(user, Perm.ROSTER_MANAGE):
        raise Http404


def _job(request: HttpRequest, job_id: int) -> Job:
    require_manager(request.user)
    return jobs.job_get(job_id=job_id, kind=Job.Kind.CHECKUP)


def _mapping_text(mapping: dict[str, str]) -> str:
    return "\n".join(f"{column},{target}" for column, target in mapping.items())


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    require_manager(request.user)
    form = CheckupUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        mapping = form.cleaned_data.get("mapping")
        try:
            job = imports.checkup_import_start(
                upload=file, file_name=file.name, source=form.cleaned_data["source"],
                mapping_id=mapping, acting_user=request.user,
            )  # fmt: skip
        except AppError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("checkup_import:job", job_id=job.pk)
    recent = Job.objects.filter(kind=Job.Kind.CHECKUP).order_by("-created_at")[:20]
    return render(request, "checkups/import/upload.html", {"form": form, "jobs": recent})


@login_required
def sample_csv(request: HttpRequest) -> HttpResponse:
    require_manager(request.user)
    response = HttpResponse(SAMPLE_CSV.read_bytes(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sample_checkups.csv"'
    return response


@login_required
def mappings(request: HttpRequest, mapping_id: int | None = None) -> HttpResponse:
    """The provider mappings, with a form for a new one or, given ``mapping_id``, for editing it."""
    require_manager(request.user)
    editing = None
    if mapping_id is not None:
        editing = CheckupCsvMapping.objects.filter(pk=mapping_id).first()
        if editing is None:
            raise Http404
    source = editing.mapping if editing else imports.SAMPLE_MAPPING
    initial = {"provider": editing.provider if editing else "", "mapping": _mapping_text(source)}
    form = MappingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            imports.mapping_save(
                provider=form.cleaned_data["provider"], mapping=form.mapping_dict(), acting_user=request.user
            )
        except AppError as exc:
            form.add_error("mapping", exc.message)
        else:
            messages.success(request, _("列の対応を保存しました。"))
            return redirect("checkup_import:mappings")
    context = {"form": form, "mappings": CheckupCsvMapping.objects.order_by("provider"), "editing": editing}
    return render(request, "checkups/import/mappings.html", context)


@login_required
def job_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    errors = [
        {**e, "column_label": imports.column_label(e.get("column") or ""), "message": imports.error_message(e["code"]),
         "warning": e["code"] in imports.WARNINGS}
        for e in job.errors[:PREVIEW_ERRORS]
    ]  # fmt: skip
    mapping = None
    if job.options.get("mapping_id"):
        mapping = CheckupCsvMapping.objects.filter(pk=job.options["mapping_id"]).first()
    context = {
        "job": job,
        "errors": errors,
        "more_errors": max(0, len(job.errors) - PREVIEW_ERRORS),
        "can_apply": imports.can_apply(job),
        "failure": imports.error_message(job.error_code) if job.error_code else "",
        "applied": job.counts.get("applied"),
        "mapping": mapping,
    }
    return render(request, "checkups/import/job.html", context)


@login_required
def status(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(jobs.job_status(_job(request, job_id)))


@login_required
@require_POST
def apply(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    try:
        imports.checkup_import_confirm(job=job, acting_user=request.user)
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("checkup_import:job", job_id=job.pk)


@login_required
def errors_csv(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    return csv_response(
        f"checkup-import-{job.pk}-errors.csv", imports.error_report_header(), imports.error_report_rows(job)
    )
