"""Pages of the roster import (名簿の取り込み): upload, preview, apply, progress, error report.

Thin: the work is in accounts.roster_import; the pages every importer shares are healthapp.job_views.
Every page needs ``roster.manage``; without it, and for another tenant's job, the answer is the same 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.functional import cached_property
from django.utils.translation import get_language, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts import roster_import
from accounts.labels import Perm
from healthapp.job_views import ADDED, TO_ADD, TO_UPDATE, UNCHANGED, UPDATED, Count, JobPages, JobUrls
from healthapp.models import Job
from tenants.context import require_tenant


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
    clear_blanks = forms.BooleanField(
        label=_("空欄のセルで登録済みの値を消す"),
        required=False,
        help_text=_("選ばなければ、空欄のセルは登録済みの値をそのまま残します。"),
    )

    @cached_property
    def guide(self) -> roster_import.FileGuide:
        """The page's 「ファイルの書き方」 (the shared upload page hands its template the form alone)."""
        return roster_import.file_guide(tenant=require_tenant())


def _start(data: dict[str, Any], acting_user) -> Job:
    upload = data["file"]
    return roster_import.roster_import_start(
        upload=upload, file_name=upload.name, mode=data["mode"], create_offices=data["create_offices"],
        clear_blanks=data["clear_blanks"], acting_user=acting_user,
    )  # fmt: skip


DEACTIVATED = Count("deactivated", _("無効化"))


def _acknowledge(job: Job) -> str:
    """Deactivations are ticked off before the apply: one click must not lock people out."""
    n = job.counts.get("deactivated", 0)
    if job.state != Job.State.VALIDATED or not n:
        return ""
    parts = [
        ngettext(
            "反映すると %(n)s 人の名簿とログインを無効化することを確認しました。",
            "反映すると %(n)s 人の名簿とログインを無効化することを確認しました。",
            n,
        )
        % {"n": n}
    ]
    if job.counts.get("deactivates_uploader"):
        parts.append(str(_("（あなた自身も含まれます）")))
    logins = roster_import.logins_turned_off(job)
    if logins.count:
        parts.append(
            ngettext("うちログインのある人は %(n)s 人です。", "うちログインのある人は %(n)s 人です。", logins.count)
            % {"n": logins.count}
        )
    if logins.last_org_admin:
        parts.append(str(_("反映するとこのテナントの組織管理者が一人もいなくなります。")))
    # Japanese runs its sentences on; English needs a space between them.
    return ("" if (get_language() or "ja").startswith("ja") else " ").join(parts)


def _extra_context(job: Job) -> dict[str, Any]:
    if job.state == Job.State.DONE:
        created_offices, created_departments = roster_import.places_created(job)
        return {"created_offices": created_offices, "created_departments": created_departments}
    if job.state != Job.State.VALIDATED:
        return {}
    context: dict[str, Any] = {
        "new_offices": job.plan.get("new_offices", []),
        "new_departments": job.plan.get("new_departments", []),
    }
    if job.counts.get("deactivated"):
        shown, more = roster_import.members_to_deactivate(job)
        # The rest of the count: rows of the file whose 資格喪失日 has passed (the file names them itself).
        ended = job.counts["deactivated"] - len(roster_import.missing_members(job))
        logins_off = roster_import.logins_turned_off(job)
        context.update(to_deactivate=shown, more_to_deactivate=more, ended_in_file=ended, logins_off=logins_off)
    return context


PAGES = JobPages(
    kind=Job.Kind.ROSTER,
    permission=Perm.ROSTER_MANAGE,
    urls=JobUrls(
        upload="accounts:roster-import",
        job="accounts:roster-import-job",
        status="accounts:roster-import-status",
        apply="accounts:roster-import-apply",
        errors="accounts:roster-import-errors",
        cancel="accounts:roster-import-cancel",
    ),
    upload_template="accounts/roster_import/upload.html",
    job_template="accounts/roster_import/job.html",
    upload_form=RosterUploadForm,
    start=_start,
    confirm=roster_import.roster_import_confirm,
    can_apply=roster_import.can_apply,
    error_message=roster_import.error_message,
    column_label=roster_import.column_label,
    report_header=roster_import.error_report_header,
    report_rows=roster_import.error_report_rows,
    preview_counts=(
        TO_ADD,
        Count("added_inactive", _("うち資格喪失日を過ぎていて無効のまま追加"), only_if_any=True),
        TO_UPDATE,
        Count("deactivated", pgettext_lazy("import preview", "無効化")),
        UNCHANGED,
        Count("errors", _("エラー（反映しない行）")),
        Count("new_offices", _("新しく作成する事業所"), only_if_any=True),
        Count("new_departments", _("新しく作成する部署"), only_if_any=True),
    ),
    applied_counts=(
        ADDED,
        UPDATED,
        DEACTIVATED,
        UNCHANGED,
        Count("logins_enabled", _("ログインを再開（名簿に戻った人）"), only_if_any=True),
    ),
    max_bytes=lambda: settings.ROSTER_IMPORT_MAX_BYTES,
    extra_context=_extra_context,
    acknowledge=_acknowledge,
)

roster_import_upload = PAGES.upload_page
roster_import_job = PAGES.job_page
roster_import_status = PAGES.status
roster_import_apply = PAGES.apply
roster_import_cancel = PAGES.cancel
roster_import_errors = PAGES.error_report


@login_required
def roster_import_template(request: HttpRequest) -> HttpResponse:
    PAGES.require(request.user)
    lang = "en" if request.GET.get("lang") == "en" else "ja"
    csv = roster_import.template_csv(lang, tenant=require_tenant())
    response = HttpResponse(csv, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="roster-template-{lang}.csv"'
    return response
