"""Checkup pages: my results (with trends), the physician's review queue, health staff's read of the results,
HR's conclusions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods, require_safe

import audit
from accounts import policy
from accounts.labels import Perm
from checkups import disclosure, items, selectors, services
from checkups.charts import trend_svg
from checkups.forms import FollowUpVisitForm, GuidanceSupportForm, OpinionForm
from checkups.models import CheckupRecord
from checkups.templatetags.checkup_tags import judged_label, unit_label
from healthapp.csvsafe import csv_response
from healthapp.errors import AppError


def _item_labels() -> dict[str, str]:
    """Item names from the catalogue (checkups/criteria/items_v1.json), in the user's language."""
    english = translation.get_language() == "en"
    return {key: item.label_en if english else item.label for key, item in items.load().items.items()}


@dataclass(frozen=True)
class RowError:
    """A follow-up visit refused: shown beside the row it was typed in, with the date as typed."""

    record_id: int
    message: str
    visited_on: str  # as typed, put back in the field
    employee_number: str  # names the row where the message is shown away from it (already on the page)
    exam_date: dt.date


@login_required
def my_checkups(request: HttpRequest) -> HttpResponse:
    return _my_checkups_page(request)


def _my_checkups_page(request: HttpRequest, row_error: RowError | None = None) -> HttpResponse:
    records = selectors.my_records(user=request.user)
    for record in records:
        audit.record(action="checkup.viewed", target_type="checkup", target_id=record.pk)
    labels, catalogue = _item_labels(), items.load()
    charts = [
        (
            labels.get(item, item),
            catalogue.unit_of(item),
            trend_svg(
                points,
                title=labels.get(item, item),
                spoken_unit=unit_label(catalogue.unit_of(item)),
                show=lambda value, item=item: catalogue.display(item, Decimal(str(value))),
            ),
        )
        for item, points in selectors.trend_series(records).items()
        if len(points) >= 2
    ]
    return render(
        request,
        "checkups/mine.html",
        {
            "records": records,
            "charts": charts,
            "labels": labels,
            "row_error": row_error,
            "targeted_levels": selectors.GUIDANCE_TARGETED,
        },
    )


def _physician_only(request: HttpRequest) -> None:
    if not policy.can(request.user, Perm.CHECKUP_JUDGE) or not selectors.employer(request.user):
        raise Http404


_REVIEW_LISTS = {"queue": "checkups:review", "signed": "checkups:review-signed"}  # tab → its URL name


def _physician_list(
    request: HttpRequest, pages: Callable[..., Page], template: str, tab: str, **listed: str
) -> HttpResponse:
    """One of the physician's lists: each row shows a person's overall grade (and opinion), a read of
    their results, audited like any other (a health read, withheld from HR)."""
    _physician_only(request)
    page = pages(user=request.user, page=request.GET.get("page"))
    audit.record(
        action="checkup.queue_viewed", target_type="checkup",
        details={**listed, "page": page.number, "records": [entry.record.pk for entry in page]},
    )  # fmt: skip
    # A record opened from here comes back to this list and page (the queue's first page is the default).
    here = reverse(_REVIEW_LISTS[tab]) + (f"?page={page.number}" if page.number > 1 else "")
    record_query = "" if here == reverse("checkups:review") else "?" + urlencode({"next": here})
    return render(
        request,
        template,
        {"page": page, "tab": tab, "days": selectors.RECENTLY_SIGNED_DAYS, "record_query": record_query},
    )


def _review_back(request: HttpRequest) -> str:
    """Where the review page returns to: ``next`` (POST or query) when it is one of the physician's lists
    on this site, with its page; the queue otherwise (never an address a link from elsewhere made up)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    parts = urlsplit(target)
    if (
        url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
        and not parts.scheme
        and not parts.netloc
        and not parts.fragment
        and parts.path in {reverse(name) for name in _REVIEW_LISTS.values()}
        and all(key == "page" and value.isdecimal() for key, value in parse_qsl(parts.query, keep_blank_values=True))
    ):
        return target
    return reverse("checkups:review")


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    return _physician_list(request, selectors.review_queue, "checkups/queue.html", "queue")


@login_required
def review_signed(request: HttpRequest) -> HttpResponse:
    return _physician_list(request, selectors.recently_signed, "checkups/signed.html", "signed", list="signed")


@login_required
def review_record(request: HttpRequest, record_id: int) -> HttpResponse:
    record = selectors.record_for_physician(user=request.user, record_id=record_id)
    back = _review_back(request)
    opinions = list(record.opinions.all())  # newest first
    form = OpinionForm(request.POST or None, initial=OpinionForm.initial_from(opinions[0] if opinions else None))
    if request.method == "POST" and form.is_valid():
        try:
            services.physician_opinion_record(record=record, acting_user=request.user, **form.cleaned_data)
        except AppError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("就業判定を記録しました。"))
            return redirect(back)  # the list and page the physician came from
    deadline = selectors.opinion_deadline(record.exam_date)
    return render(
        request,
        "checkups/review.html",
        {
            **_results_read(record),
            "form": form,
            "opinions": opinions,
            "deadline": deadline,
            "back": back,
            "back_to_signed": urlsplit(back).path == reverse("checkups:review-signed"),
            # overdue only while the opinion is still owed: a signature after the day is not undone by it
            "overdue": deadline < timezone.localdate() and (not opinions or record.stale_opinion),
        },
    )


def _results_read(record) -> dict:
    """What templates/checkups/_record_results.html shows of ``record`` (values, corrections, 前回), its
    reads audited: the record, and the previous one whose values stand beside it."""
    audit.record(action="checkup.viewed", target_type="checkup", target_id=record.pk)
    previous = selectors.previous_record(record)
    if previous is not None:
        audit.record(action="checkup.viewed", target_type="checkup", target_id=previous.pk)
    return {
        "record": record,
        "labels": _item_labels(),
        "corrections": selectors.corrections_of(record),
        "previous": previous,
        "previous_values": {r.item: r for r in previous.results_in_order} if previous else {},
    }


@login_required
@require_safe
def results_list(request: HttpRequest) -> HttpResponse:
    """健診結果の閲覧 (checkup.view): the records in scope with their grades, for 保健指導; no lab values."""
    year = _year(request.GET.get("year", ""))
    grade = request.GET.get("grade", "")
    grade = grade if grade in selectors.RESULT_GRADES else ""
    guidance = request.GET.get("guidance", "")
    guidance = guidance if guidance in selectors.RESULT_GUIDANCE else ""
    program = request.GET.get("program", "")
    program = program if program in CheckupRecord.Program.values else ""
    years = selectors.result_years(user=request.user)  # a 404 without checkup.view
    year = year if year in years else None
    page = selectors.checkup_results(
        user=request.user, page=request.GET.get("page"), fiscal_year=year, grade=grade, guidance=guidance,
        program=program,
    )  # fmt: skip
    chosen = (("year", year), ("program", program), ("grade", grade), ("guidance", guidance))
    filters = {key: value for key, value in chosen if value}
    # Its rows show grades and 保健指導 levels: a read of those people's results, audited like the
    # physician's lists (a health read, withheld from readers of the log without checkup.view).
    audit.record(
        action="checkup.results_listed", target_type="checkup",
        details={**filters, "page": page.number, "records": [entry.record.pk for entry in page]},
    )  # fmt: skip
    return render(
        request,
        "checkups/results_list.html",
        {
            "page": page, "years": years, "year": year, "grade": grade, "guidance": guidance, "program": program,
            "grades": selectors.RESULT_GRADES, "guidance_levels": selectors.RESULT_GUIDANCE,
            "programs": CheckupRecord.Program.choices,
            "pager_query": urlencode(filters) + "&" if filters else "",
        },
    )  # fmt: skip


@login_required
@require_safe
def results_record(request: HttpRequest, record_id: int) -> HttpResponse:
    """One record's results, read only, audited; with the physician's 就業判定 in force, read only: the
    health staff supporting the person (保健指導, 事後措置) work from it, and only a physician signs one."""
    record = selectors.record_for_viewer(user=request.user, record_id=record_id)
    context = _results_read(record)
    if selectors.employer(request.user):  # a 健保 has no 就業判定 (an employer's duty)
        context["employer"] = True
        context["opinion"] = next(iter(record.opinions.all()), None)
        context["follow_up"] = selectors.follow_up_state(record)
    return render(request, "checkups/results_detail.html", context)


@login_required
def conclusions(request: HttpRequest) -> HttpResponse:
    return _conclusions_page(request, request.GET.get("show", "all"), request.GET.get("page"))


def _conclusions_page(
    request: HttpRequest, show: str, page_number: str | None, row_error: RowError | None = None
) -> HttpResponse:
    show = show if show in selectors.CONCLUSION_FILTERS else "all"
    page = selectors.conclusions(user=request.user, page=page_number, show=show)
    # A list has no single target: no target type, so the audit viewer does not show "checkup #".
    audit.record(
        action="checkup.conclusions_viewed",
        details={"page": page.number, "show": show, "records": [row.record_id for row in page]},
    )
    filters = [(key, label) for key, (label, _narrowing) in selectors.CONCLUSION_FILTERS.items()]
    pager_query = "" if show == "all" else urlencode({"show": show}) + "&"
    return render(
        request,
        "checkups/conclusions.html",
        {
            "page": page, "show": show, "filters": filters, "pager_query": pager_query, "row_error": row_error,
            "row_error_shown": row_error is not None and any(row.record_id == row_error.record_id for row in page),
            "physicians_own": selectors.physicians_own_awaiting(user=request.user),
        },
    )  # fmt: skip


def _year(text: str) -> int | None:
    """?year= as a number; anything else (x, or ², a digit int() refuses) means the latest year."""
    return int(text) if text.isascii() and text.isdigit() else None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    distribution = selectors.grade_distribution(user=request.user, fiscal_year=_year(request.GET.get("year", "")))
    return render(
        request,
        "checkups/dashboard.html",
        {
            "fiscal_year": distribution.fiscal_year, "rows": distribution.rows, "follow_up": distribution.follow_up,
            "years": distribution.years, "min_size": selectors.MIN_GROUP_SIZE, "grades": "ABCDE",
            "grade_classes": list(disclosure.CLASSES.values()), "employer": selectors.employer(request.user),
        },
    )  # fmt: skip


@login_required
def guidance_summary(request: HttpRequest) -> HttpResponse:
    summary = selectors.guidance_summary(user=request.user, fiscal_year=_year(request.GET.get("year", "")))
    audit.record(
        action="checkup.guidance_summary_viewed", target_type="checkup",
        details={"fiscal_year": summary.fiscal_year, "eligible": summary.rows[-1].eligible,
                 "format": "csv" if request.GET.get("format") == "csv" else "page"},
    )  # fmt: skip
    rows = summary.rows
    bands = len(selectors.GUIDANCE_AGE_BANDS)
    levels = [*selectors.GUIDANCE_LEVELS, selectors.NOT_JUDGED]
    if request.GET.get("format") == "csv":  # for the 法定報告 and the insurer's own spreadsheets
        metabolic = [_("メタボ %(judged)s") % {"judged": judged_label(m)} for m in selectors.METABOLIC_COUNTED]
        header = [_("年度"), _("集計日"), _("区分"), pgettext("guidance summary", "対象者"), _("受診者"),
                  _("受診率（%）"), *(judged_label(level) for level in levels), _("特定保健指導の対象者"),
                  _("特定保健指導の対象者の割合（%）"), _("特定保健指導の利用者（初回面接）"),
                  _("特定保健指導の終了者"), _("特定保健指導の実施率（%）"),
                  *(_("%(level)s %(count)s") % {"level": judged_label(level), "count": count}
                    for level in selectors.GUIDANCE_TARGETED for count in (_("利用者"), _("終了者"))),
                  _("服薬中"), *metabolic]  # fmt: skip
        table = [
            [summary.fiscal_year, summary.as_of.isoformat(), row.label, row.eligible, row.examined,
             "" if row.rate is None else row.rate, *(row.levels.get(level, 0) for level in levels), row.targeted,
             "" if row.targeted_share is None else row.targeted_share, row.started, row.completed,
             "" if row.completion_rate is None else row.completion_rate,
             *(counts.get(level, 0) for level in selectors.GUIDANCE_TARGETED
               for counts in (row.started_by_level, row.completed_by_level)),
             row.medicated,
             *(row.metabolic.get(m, 0) for m in selectors.METABOLIC_COUNTED)]
            for row in rows
        ]  # fmt: skip
        return csv_response(f"checkup-rate-{summary.fiscal_year}.csv", header, table)
    return render(
        request,
        "checkups/guidance_summary.html",
        {
            "summary": summary, "fiscal_year": summary.fiscal_year, "years": summary.years,
            "bands": rows[:bands], "groups": rows[bands:-1], "overall": rows[-1],
            "levels": levels, "metabolic": selectors.METABOLIC_COUNTED,
        },
    )  # fmt: skip


@login_required
def unexamined(request: HttpRequest) -> HttpResponse:
    found = selectors.unexamined(
        user=request.user, fiscal_year=_year(request.GET.get("year", "")), page=request.GET.get("page", 1)
    )
    # Who had no checkup is about their health care: a health read, withheld from log readers without checkup.view.
    audit.record(
        action="checkup.unexamined_listed", target_type="member",
        details={"fiscal_year": found.fiscal_year, "page": found.page.number,
                 "members": [entry.member.pk for entry in found.page]},
    )  # fmt: skip
    return render(
        request,
        "checkups/unexamined.html",
        {"found": found, "page": found.page, "fiscal_year": found.fiscal_year, "years": found.years,
         "pager_query": f"year={found.fiscal_year}&"},
    )  # fmt: skip


@login_required
@require_safe
def guidance_targets(request: HttpRequest) -> HttpResponse:
    download = request.GET.get("format") == "csv"  # the list for a 保健指導機関 the insurer entrusts it to
    found = selectors.guidance_targets(
        user=request.user, fiscal_year=_year(request.GET.get("year", "")), status=request.GET.get("status", ""),
        page=request.GET.get("page", 1), everyone=download,
    )  # fmt: skip
    # Who is a target of 特定保健指導, and how far it went, is health data of named people: a health read.
    audit.record(
        action="checkup.guidance_targets_listed", target_type="member",
        details={"fiscal_year": found.fiscal_year, "status": found.status, "page": found.page.number,
                 "format": "csv" if download else "page", "members": [entry.member.pk for entry in found.page]},
    )  # fmt: skip
    if download:
        return _guidance_targets_csv(found)
    query = f"year={found.fiscal_year}&" + (f"status={found.status}&" if found.status else "")
    return render(
        request,
        "checkups/guidance_targets.html",
        {"found": found, "page": found.page, "fiscal_year": found.fiscal_year, "years": found.years,
         "filters": selectors.GUIDANCE_STATUS_FILTERS, "pager_query": query},
    )  # fmt: skip


def _guidance_targets_csv(found: selectors.GuidanceTargets) -> HttpResponse:
    header = [_("年度"), _("氏名"), _("社員番号"), _("続柄"), _("性別"), _("年度末の年齢"), _("事業所"), _("健診日"),
              _("支援の区分"), _("実施状況"), _("初回面接日"), _("初回面接の形態"), _("実績評価日・終了日"),
              _("腹囲2cm・体重2kg減")]  # fmt: skip
    goal = {True: _("達成"), False: _("未達成"), None: ""}
    rows = []
    for entry in found.page:
        member, support = entry.member, entry.support
        rows.append([
            found.fiscal_year, member.name, member.employee_number or "", member.get_relationship_display(),
            member.get_sex_display() if member.sex else "", entry.age, member.office.name if member.office else "",
            entry.exam_date.isoformat(), judged_label(entry.level),
            support.get_status_display() if support else _("未実施"),
            support.started_on.isoformat() if support else "", support.get_method_display() if support else "",
            support.ended_on.isoformat() if support and support.ended_on else "",
            goal[support.goal_met] if support else "",
        ])  # fmt: skip
    suffix = f"-{found.status}" if found.status else ""
    return csv_response(f"guidance-targets-{found.fiscal_year}{suffix}.csv", header, rows)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def guidance_record(request: HttpRequest, record_id: int) -> HttpResponse:
    found = selectors.guidance_record(user=request.user, record_id=record_id)
    record = found.record
    # The list's filter the page was opened from, for the way back (and kept across a save).
    back_status = request.GET.get("status", "")
    back_status = back_status if back_status in selectors.GUIDANCE_STATUS_FILTERS else ""
    here = reverse("checkups:guidance-record", args=[record.pk]) + (f"?status={back_status}" if back_status else "")
    form = GuidanceSupportForm(request.POST or None, initial=GuidanceSupportForm.initial_from(found.current))
    if request.method == "POST":
        if "withdraw" in request.POST:
            try:
                services.guidance_support_withdraw(record=record, acting_user=request.user)
            except AppError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("特定保健指導の記録を取り消しました。"))
            return redirect(here)
        try:
            if form.is_valid():
                services.guidance_support_record(record=record, acting_user=request.user, **form.cleaned_data)
                messages.success(request, _("特定保健指導の実施状況を記録しました。"))
                return redirect(here)
        except AppError as exc:
            form.add_error(GuidanceSupportForm.ERROR_FIELDS.get(exc.code), exc.message)
    audit.record(action="checkup.guidance_viewed", target_type="checkup", target_id=record.pk)
    return render(
        request,
        "checkups/guidance_record.html",
        {"found": found, "record": record, "form": form, "back_status": back_status},
    )


def _follow_up_post(request: HttpRequest, record) -> RowError | None:
    """Record (or, with ``undo``, take back) a follow-up visit. Success goes to the messages; a refusal is
    returned, to be shown beside the record's row with the date as typed."""
    typed = request.POST.get("visited_on", "")[:20]

    def refused(message: str) -> RowError:
        return RowError(record.pk, message, typed, record.member.employee_number, record.exam_date)

    try:
        if "undo" in request.POST:
            services.follow_up_visit_undo(record=record, acting_user=request.user)
            messages.success(request, _("受診の記録を取り消しました。"))
            return None
        form = FollowUpVisitForm(request.POST)
        if not form.is_valid():
            return refused(_("受診日を正しく入力してください。"))
        services.follow_up_visit_record(record=record, acting_user=request.user, **form.cleaned_data)
        messages.success(request, _("受診を記録しました。"))
    except AppError as exc:
        return refused(exc.message)
    return None


def _list_again(request: HttpRequest, name: str) -> HttpResponse:
    """A refused visit date is shown at the form's own address; the links and forms of that page (pager,
    filter, language switch) come back to it by GET: on to the list they meant, with their query."""
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse(name) + (f"?{query}" if query else ""))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def conclusion_follow_up(request: HttpRequest, record_id: int) -> HttpResponse:
    if request.method != "POST":
        return _list_again(request, "checkups:conclusions")
    record = selectors.record_for_conclusions(user=request.user, record_id=record_id)
    show = request.POST.get("show", "")
    show = show if show in selectors.CONCLUSION_FILTERS else ""
    page = request.POST.get("page", "")
    page = page if page.isdecimal() else ""
    row_error = _follow_up_post(request, record)
    if row_error is not None:  # the same page again, the message beside the row and the typed date kept
        return _conclusions_page(request, show or "all", page or None, row_error)
    # back to the page and filter the visit was recorded from
    back = {key: value for key, value in (("show", show), ("page", page)) if value}
    return redirect(reverse("checkups:conclusions") + (f"?{urlencode(back)}" if back else ""))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def my_follow_up(request: HttpRequest, record_id: int) -> HttpResponse:
    if request.method != "POST":
        return _list_again(request, "checkups:mine")
    row_error = _follow_up_post(request, selectors.my_record(user=request.user, record_id=record_id))
    if row_error is not None:
        return _my_checkups_page(request, row_error)
    return redirect("checkups:mine")
