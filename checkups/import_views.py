"""Pages of the checkup import (健診結果の取り込み): upload (MHLW XML / ZIP or provider CSV), preview,
apply, progress, error report, and the per-provider CSV column mappings.

Thin: the work is in checkups.imports; the pages every importer shares are healthapp.job_views. Every
page needs ``roster.manage`` (the people who load the roster load the checkup files); without it, and for
another tenant's job, the answer is the same 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from accounts.labels import Perm
from checkups import imports
from checkups.models import CheckupCsvMapping
from healthapp.errors import AppError
from healthapp.job_views import ADDED, TO_ADD, UNCHANGED, Count, JobPages, JobUrls
from healthapp.models import Job


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
            if len(self.fields["mapping"].choices) > 1:
                self.add_error("mapping", _("CSV の列の対応（健診機関）を選んでください。"))
            else:  # nothing to choose from yet: say where one is made
                self.add_error(
                    "mapping",
                    _(
                        "CSV の列の対応がまだありません。上の「CSV の列の対応（健診機関ごと）」で健診機関の列の対応を"
                        "保存してから、ファイルを選び直してください。"
                    ),
                )
        return data


class MappingForm(forms.Form):
    provider = forms.CharField(label=_("健診機関名"), max_length=100)
    mapping = forms.CharField(
        label=_("列の対応"),
        widget=forms.Textarea(attrs={"rows": 16}),
        help_text=_(
            "1行に「CSV の列名,項目キー」（例: 社員番号,employee_number / 受診日,exam_date / HbA1c,hba1c）。"
            "社員番号のない健診機関のファイルは保険証で照合します: 記号,insurance_symbol / 番号,insurance_number / "
            "性別,sex / 生年月日,birth_date（双子など同じ保険証の方がいるときは 枝番,insurance_branch も）"
        ),
    )

    def clean_mapping(self) -> str:
        # A line without a comma would otherwise vanish, and the admin be told only that a column is missing.
        text = self.cleaned_data["mapping"]
        lines = enumerate(text.splitlines(), start=1)
        bad = [(n, line.strip()) for n, line in lines if line.strip() and "," not in line]
        if bad:
            raise forms.ValidationError(
                [
                    _("%(n)s 行目「%(line)s」にカンマがありません。「CSV の列名,項目キー」の形で書いてください。")
                    % {"n": n, "line": line[:40]}
                    for n, line in bad[:5]
                ]
            )
        return text

    def mapping_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.cleaned_data["mapping"].splitlines():
            column, sep, target = line.rpartition(",")
            if sep and column.strip():
                out[column.strip()] = target.strip()
        return out


def _start(data: dict[str, Any], acting_user) -> Job:
    file = data["file"]
    return imports.checkup_import_start(
        upload=file, file_name=file.name, source=data["source"], mapping_id=data.get("mapping"),
        acting_user=acting_user,
    )  # fmt: skip


def _mapping(job: Job) -> dict[str, Any]:
    """The provider mapping a CSV job was read with, named on its page (None once deleted, or for XML)."""
    mapping_id = job.options.get("mapping_id")
    return {"mapping": CheckupCsvMapping.objects.filter(pk=mapping_id).first() if mapping_id else None}


def _acknowledge(job: Job) -> str:
    """Corrections of records a physician already signed send them back for a new opinion: ticked off first."""
    if not (n := imports.rechecks_to_acknowledge(job)):
        return ""
    return ngettext(
        "反映すると、就業判定済みの %(n)s 件が訂正された値で産業医の再確認に戻ることを確認しました。",
        "反映すると、就業判定済みの %(n)s 件が訂正された値で産業医の再確認に戻ることを確認しました。",
        n,
    ) % {"n": n}


PAGES = JobPages(
    kind=Job.Kind.CHECKUP,
    permission=Perm.ROSTER_MANAGE,
    urls=JobUrls(
        upload="checkup_import:upload",
        job="checkup_import:job",
        status="checkup_import:status",
        apply="checkup_import:apply",
        errors="checkup_import:errors",
        cancel="checkup_import:cancel",
    ),
    upload_template="checkups/import/upload.html",
    job_template="checkups/import/job.html",
    upload_form=CheckupUploadForm,
    start=_start,
    confirm=imports.checkup_import_confirm,
    can_apply=imports.can_apply,
    error_message=imports.error_message,
    column_label=imports.column_label,
    row_message=imports.row_error_message,
    report_header=imports.error_report_header,
    report_rows=imports.error_report_rows,
    preview_counts=(
        TO_ADD,
        Count("updated", _("訂正（新しい結果で置き換え、訂正前の値と判定は履歴に残します）")),
        Count("rechecks", _("うち就業判定済み（産業医の再確認に戻ります）"), only_if_any=True),
        UNCHANGED,
        Count("errors", _("エラー（取り込まない件）")),
        Count("warnings", _("警告（読み込まない列・項目コード・ファイル。ほかは取り込みます）"), only_if_any=True),
    ),
    applied_counts=(
        ADDED,
        Count("updated", pgettext_lazy("import count", "訂正")),
        UNCHANGED,
        Count("judged", _("判定した件数")),
    ),
    warnings=imports.WARNINGS,
    extra_context=_mapping,
    acknowledge=_acknowledge,
)

upload = PAGES.upload_page
job_page = PAGES.job_page
status = PAGES.status
apply = PAGES.apply
cancel = PAGES.cancel
errors_csv = PAGES.error_report


def _mapping_text(mapping: dict[str, str]) -> str:
    return "\n".join(f"{column},{target}" for column, target in mapping.items())


@login_required
def sample_csv(request: HttpRequest) -> HttpResponse:
    PAGES.require(request.user)
    response = HttpResponse(imports.SAMPLE_CSV.read_bytes(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sample_checkups.csv"'
    return response


@login_required
def mappings(request: HttpRequest, mapping_id: int | None = None) -> HttpResponse:
    """The provider mappings, with a form for a new one or, given ``mapping_id``, for editing it."""
    PAGES.require(request.user)
    editing = None
    if mapping_id is not None:
        editing = CheckupCsvMapping.objects.filter(pk=mapping_id).first()
        if editing is None:
            raise Http404
    source = editing.mapping if editing else imports.SAMPLE_MAPPING
    # The first mapping starts as the shipped sample's, named for it: saved as is, the sample CSV imports.
    first = editing is None and not CheckupCsvMapping.objects.exists()
    provider = editing.provider if editing else (str(_("サンプル健診機関")) if first else "")
    initial = {"provider": provider, "mapping": _mapping_text(source)}
    form = MappingForm(request.POST or None, initial=initial)
    if request.method == "POST" and "delete" not in request.POST and form.is_valid():
        try:
            imports.mapping_save(
                provider=form.cleaned_data["provider"], mapping=form.mapping_dict(), acting_user=request.user,
                mapping_id=editing.pk if editing else None,
            )  # fmt: skip
        except AppError as exc:
            form.add_error("mapping", exc.message)
        else:
            messages.success(request, _("列の対応を保存しました。"))
            return redirect("checkup_import:mappings")
    if request.method == "POST" and editing is not None and "delete" in request.POST:
        imports.mapping_delete(mapping=editing, acting_user=request.user)
        messages.success(request, _("列の対応「%(provider)s」を削除しました。") % {"provider": editing.provider})
        return redirect("checkup_import:mappings")
    context = {"form": form, "mappings": CheckupCsvMapping.objects.order_by("provider"), "editing": editing,
               "targets": imports.mapping_targets()}  # fmt: skip
    return render(request, "checkups/import/mappings.html", context)
