"""The pages every file importer shows the same way (roster, checkups): the upload form with the history,
a job's page (facts, live progress, preview and result counts, confirm form, errors), its JSON status for
the progress bar, the confirm POST and the CSV error report.

An importer describes itself once in a ``JobPages`` (job kind, permission, URL names, service functions,
count labels) and points its URLs at that object's views; its templates extend templates/jobs/upload.html
and templates/jobs/job.html and fill in only what it alone shows. Thin like any view: the work is in the
importer's services and healthapp.jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_POST

from accounts import policy
from healthapp import jobs
from healthapp.csvsafe import csv_response
from healthapp.errors import AppError
from healthapp.models import Job

PREVIEW_ERRORS = 200  # the page lists this many; the CSV report has them all
RECENT_JOBS = 20


def over_upload_limit(request: HttpRequest) -> bool:
    """A body larger than FILE_UPLOAD_MAX_MEMORY_SIZE: the upload handler drops its file unread (never
    written to disk), so it would otherwise read as no file at all."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    except ValueError:
        return False


def _upload_limit_mb() -> int:
    return (settings.FILE_UPLOAD_MAX_MEMORY_SIZE - 2**20) // 2**20


@dataclass(frozen=True)
class Count:
    """One line of a count table: ``key`` in the job's counts, its label; ``only_if_any`` hides it at zero."""

    key: str
    label: str | Promise
    only_if_any: bool = False


# The counts every importer has, by the same words; a preview's say what applying would do (English
# tells "To add" from "Added", Japanese needs no second word).
ADDED = Count("added", _("追加"))
UPDATED = Count("updated", _("更新"))
UNCHANGED = Count("unchanged", _("変更なし"))
TO_ADD = Count("added", pgettext_lazy("import preview", "追加"))
TO_UPDATE = Count("updated", pgettext_lazy("import preview", "更新"))


@dataclass(frozen=True)
class JobUrls:
    """The URL names of one importer's pages; all but ``upload`` take ``job_id``."""

    upload: str
    job: str
    status: str
    apply: str
    errors: str
    cancel: str


def _no_extra(job: Job) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobPages:
    """One importer's front end. ``start`` turns the upload form's cleaned data into a new job;
    ``confirm``, ``can_apply``, ``error_message`` and the report functions are the importer's services."""

    kind: str
    permission: str
    urls: JobUrls
    upload_template: str
    job_template: str
    upload_form: type[forms.Form]
    start: Callable[[dict[str, Any], Any], Job]
    confirm: Callable[..., Job]
    can_apply: Callable[[Job], bool]
    error_message: Callable[[str], str]
    column_label: Callable[[str], str]
    report_header: Callable[[], list[str]]
    report_rows: Callable[[Job], Iterable[Sequence[object]]]
    preview_counts: tuple[Count, ...]
    applied_counts: tuple[Count, ...]
    warnings: frozenset[str] = frozenset()  # error codes that import the rest of the entry anyway
    max_bytes: Callable[[], int] | None = None  # the importer's upload limit, for the message of one too large
    row_message: Callable[[dict], str] | None = None  # an error row's reason from the whole row, not its code alone
    extra_context: Callable[[Job], dict[str, Any]] = _no_extra
    # What the admin must tick before applying this job, or "" (e.g. members the apply will deactivate):
    # a destructive apply is not one click away.
    acknowledge: Callable[[Job], str] | None = None

    def require(self, user) -> None:
        """Without the importer's permission over the whole tenant every page is the 404 of a page that does
        not exist (a file may name anyone in the tenant: a department's HR does not import)."""
        if not policy.can_tenant_wide(user, self.permission):
            raise Http404

    def job(self, request: HttpRequest, job_id: int) -> Job:
        """The current tenant's job of this kind for a user holding the permission; anything else is 404."""
        self.require(request.user)
        return jobs.job_get(job_id=job_id, kind=self.kind)

    def _context(self, **context: Any) -> dict[str, Any]:
        return {"title": Job.Kind(self.kind).label, "kind": self.kind, "urls": self.urls, **context}

    @method_decorator(login_required)
    def upload_page(self, request: HttpRequest) -> HttpResponse:
        self.require(request.user)
        form = self.upload_form(request.POST or None, request.FILES or None)
        if request.method == "POST" and over_upload_limit(request):  # dropped unread, never written to disk
            limit = self.max_bytes() // 2**20 if self.max_bytes else _upload_limit_mb()
            form.is_valid()  # the other fields' errors; the file's is this one alone (not "required")
            form.errors["file"] = form.error_class([_("ファイルが大きすぎます（上限 %(mb)s MB）。") % {"mb": limit}])
        elif request.method == "POST" and form.is_valid():
            try:
                job = self.start(form.cleaned_data, request.user)
            except AppError as exc:
                form.add_error("file", exc.message)
            else:
                return redirect(self.urls.job, job_id=job.pk)
        recent = list(Job.objects.filter(kind=self.kind).defer(*Job.FINDINGS).order_by("-created_at")[:RECENT_JOBS])
        for job in recent:  # validated, yet never to be applied (mode full with errors): not "awaiting" anyone
            job.blocked = job.state == Job.State.VALIDATED and not self.can_apply(job)
        return render(request, self.upload_template, self._context(form=form, jobs=recent))

    @method_decorator(login_required)
    def job_page(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.job(request, job_id)
        errors = [
            {**e, "column_label": self.column_label(e.get("column") or ""),
             "message": self.row_message(e) if self.row_message else self.error_message(e["code"]),
             "warning": e["code"] in self.warnings}
            for e in job.errors[:PREVIEW_ERRORS]
        ]  # fmt: skip
        applied = job.counts.get("applied")
        context = self._context(
            job=job,
            errors=errors,
            more_errors=max(0, len(job.errors) - PREVIEW_ERRORS),
            can_apply=self.can_apply(job),
            acknowledge=self.acknowledge(job) if self.acknowledge else "",
            # A bar for work under way or done; a preview waiting for its confirm, or a file refused before
            # any row was applied, has no progress to show (the validation's own 100% read as "applied").
            show_progress=job.state in _UNDER_WAY or (job.state == Job.State.FAILED and job.rows_done > 0),
            checking=job.state in (Job.State.UPLOADED, Job.State.VALIDATING),
            # Validated, yet never to be applied (mode full with errors): said as the history list says it.
            blocked=job.state == Job.State.VALIDATED and not self.can_apply(job),
            failure=self.error_message(job.error_code) if job.error_code else "",
            applied=applied,
            preview_counts=_count_rows(self.preview_counts, job.counts),
            applied_counts=_count_rows(self.applied_counts, applied or {}),
            **self.extra_context(job),
        )
        return render(request, self.job_template, context)

    @method_decorator(login_required)
    def status(self, request: HttpRequest, job_id: int) -> JsonResponse:
        return JsonResponse(jobs.job_status(self.job(request, job_id)))

    @method_decorator(login_required)
    @method_decorator(require_POST)
    def apply(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.job(request, job_id)
        ticked = request.POST.get("acknowledge") == "1"
        if self.acknowledge and self.acknowledge(job) and not ticked:
            messages.error(request, _("確認の欄にチェックを入れてから反映してください。"))
            return redirect(self.urls.job, job_id=job.pk)
        try:
            self.confirm(job=job, acting_user=request.user, acknowledged=ticked)
        except AppError as exc:
            messages.error(request, exc.message)
        return redirect(self.urls.job, job_id=job.pk)

    @method_decorator(login_required)
    @method_decorator(require_POST)
    def cancel(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.job(request, job_id)
        try:
            with transaction.atomic():
                jobs.job_cancel(job_id=job.pk)
        except AppError as exc:
            messages.error(request, exc.message)
            return redirect(self.urls.job, job_id=job.pk)
        messages.success(request, _("取り込みを取り消しました。アップロードされたファイルは削除しました。"))
        return redirect(self.urls.upload)

    @method_decorator(login_required)
    def error_report(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.job(request, job_id)
        name = f"{self.kind}-import-{job.label_number}-errors.csv"  # the number the page calls it by (#5)
        return csv_response(name, self.report_header(), self.report_rows(job))


_UNDER_WAY = frozenset({Job.State.UPLOADED, Job.State.VALIDATING, Job.State.APPLYING, Job.State.DONE})


def _count_rows(spec: tuple[Count, ...], counts: Mapping[str, Any]) -> list[tuple[str, str | Promise, Any]]:
    """(key, label, value) to show; a missing count is blank, as the page showed it before it ran."""
    return [(c.key, c.label, counts.get(c.key, "")) for c in spec if not c.only_if_any or counts.get(c.key)]
