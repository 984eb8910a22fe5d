"""Checkup pages: my results (with trends), the physician's review queue, HR's conclusions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

import audit
from accounts import policy
from accounts.labels import Perm
from checkups import selectors, services
from checkups.charts import trend_svg
from checkups.forms import OpinionForm
from healthapp.errors import AppError

ITEM_LABELS = {
    "height": _("身長"), "weight": _("体重"), "bmi": "BMI", "waist": _("腹囲"), "systolic": _("収縮期血圧"),
    "diastolic": _("拡張期血圧"), "triglycerides_fasting": _("中性脂肪（空腹時）"),
    "triglycerides_random": _("中性脂肪（随時）"), "hdl": _("HDLコレステロール"), "ldl": _("LDLコレステロール"),
    "ast": "AST (GOT)", "alt": "ALT (GPT)", "ggt": "γ-GT", "glucose_fasting": _("空腹時血糖"),
    "glucose_random": _("随時血糖"), "hba1c": "HbA1c",
}  # fmt: skip


@login_required
def my_checkups(request: HttpRequest) -> HttpResponse:
    records = selectors.my_records(user=request.user)
    for record in records:
        audit.record(action="checkup.viewed", target_type="checkup", target_id=record.pk)
    charts = [
        trend_svg(points, title=str(ITEM_LABELS.get(item, item)))
        for item, points in selectors.trend_series(records).items()
        if len(points) >= 2
    ]
    return render(request, "checkups/mine.html", {"records": records, "charts": charts, "labels": ITEM_LABELS})


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    if not policy.can(request.user, Perm.CHECKUP_JUDGE):
        raise Http404
    return render(request, "checkups/queue.html", {"queue": selectors.review_queue(user=request.user)})


@login_required
def review_record(request: HttpRequest, record_id: int) -> HttpResponse:
    record = selectors.record_for_physician(user=request.user, record_id=record_id)
    form = OpinionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.physician_opinion_record(record=record, acting_user=request.user, **form.cleaned_data)
        except AppError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("就業判定を記録しました。"))
            return redirect("checkups:review")
    audit.record(action="checkup.viewed", target_type="checkup", target_id=record.pk)
    return render(
        request,
        "checkups/review.html",
        {"record": record, "form": form, "labels": ITEM_LABELS, "opinions": record.opinions.order_by("-signed_at")},
    )


@login_required
def conclusions(request: HttpRequest) -> HttpResponse:
    rows = selectors.conclusions(user=request.user)
    audit.record(action="checkup.conclusions_viewed", target_type="checkup", details={"rows": len(rows)})
    return render(request, "checkups/conclusions.html", {"rows": rows})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    fiscal_year, rows = selectors.grade_distribution(user=request.user)
    return render(
        request,
        "checkups/dashboard.html",
        {"fiscal_year": fiscal_year, "rows": rows, "min_size": selectors.MIN_GROUP_SIZE, "grades": "ABCDE"},
    )
