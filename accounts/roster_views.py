"""Pages of the roster import (名簿の取り込み): upload, preview, apply, progress, error report.

Thin: the work is in accounts.roster_import. Every page needs ``roster.manage``; without it, and for
another tenant's job, the answer is the same 404.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts import policy, roster_import
from accounts.labels import Perm
from healthapp import jobs
from healthapp.csvsafe import csv_response
from healthapp.errors import AppError
from healthapp.models import Job

PREVIEW_ERRORS = 200  # the page lists this many; the CSV report has them all


class RosterUploadForm(forms.Form):
    file = forms.FileField(label=_("名簿ファイル（CSV）"))
    mode = forms.ChoiceField(
        label=_("取り込み方法"),
        choices=[
            (roster_import.PARTIAL, _("差分（ファイルにある人だけを追加・更新）")),
            (roster_import.FULL, _("全件（ファイルにない人は無効化）")),
        ],
        initial=roster_import.PARTIAL,
        widget=forms.RadioSelect,
    )
    create_offices = forms.BooleanField(label=_("未登録の事業所・部署を作成する"), required=False)


def require_roster_manager(user) -> None:
    if not policy.can(user, Perm.ROSTER_MANAGE):
        raise Http404


def _job(request: HttpRequest, job_id: int) -> Job:
    require_roster_manager(request.user)
    return jobs.job_get(job_id=job_id, kind=Job.Kind.ROSTER)


@login_required
def roster_import_upload(request: HttpRequest) -> HttpResponse:
    require_roster_manager(request.user)
    form = RosterUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = roster_import.roster_import_start(
                upload=upload,
                file_name=upload.name,
                mode=form.cleaned_data["mode"],
                create_offices=form.cleaned_data["create_offices"],
                acting_user=request.user,
            )
        except AppError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("accounts:roster-import-job", job_id=job.pk)
    recent = Job.objects.filter(kind=Job.Kind.ROSTER).order_by("-created_at")[:20]
    return render(request, "accounts/roster_import/upload.html", {"form": form, "jobs": recent})


@login_required
def roster_import_template(request: HttpRequest) -> HttpResponse:
    require_roster_manager(request.user)
    lang = "en" if request.GET.get("lang") == "en" else "ja"
    response = HttpResponse(roster_import.template_csv(lang), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="roster-template-{lang}.csv"'
    return response


@login_required
def roster_import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    errors = [
        {**e, "column_label": roster_import.COLUMN_LABELS.get(e.get("column") or "", ""),
         "message": roster_import.error_message(e["code"])}
        for e in job.errors[:PREVIEW_ERRORS]
    ]  # fmt: skip
    context = {
        "job": job,
        "errors": errors,
        "more_errors": max(0, len(job.errors) - PREVIEW_ERRORS),
        "can_apply": roster_import.can_apply(job),
        "full_blocked": job.state == Job.State.VALIDATED and not roster_import.can_apply(job),
        "failure": roster_import.error_message(job.error_code) if job.error_code else "",
        "applied": job.counts.get("applied"),
    }
    return render(request, "accounts/roster_import/job.html", context)


@login_required
def roster_import_status(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(jobs.job_status(_job(request, job_id)))


@login_required
@require_POST
def roster_import_apply(request: HttpRequest, job_id: int) -> HttpResponse:
    from django.contrib import messages

    job = _job(request, job_id)
    try:
        roster_import.roster_import_confirm(job=job, acting_user=request.user)
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:roster-import-job", job_id=job.pk)


@login_required
def roster_import_errors(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    return csv_response(
        f"roster-import-{job.pk}-errors.csv",
        roster_import.error_report_header(),
        roster_import.error_report_rows(job),
    )
