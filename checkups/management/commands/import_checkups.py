"""manage.py import_checkups --tenant SLUG FILE [--source csv|mhlw_xml] [--mapping PROVIDER_NAME] [--dry-run]
[--acknowledge-rechecks]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from checkups import imports
from checkups.models import CheckupCsvMapping
from healthapp.errors import AppError
from healthapp.job_command import ImportCommand, in_both
from healthapp.models import Job
from tenants.models import Tenant

SOURCE_BY_SUFFIX = {".csv": imports.SOURCE_CSV, ".xml": imports.SOURCE_XML, ".zip": imports.SOURCE_XML}


class Command(ImportCommand):
    help = (
        "健診結果ファイル（特定健診 XML・ZIP、健診機関の CSV）を取り込みます（画面と同じ検証・反映・判定）。"
        "--dry-run は検証結果だけを表示します。 / Import a checkup results file (MHLW XML or ZIP, provider CSV) "
        "with the same services as the upload page; --dry-run only validates."
    )
    unit = "records"
    failed_action = "checkup.import_failed"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="MHLW XML (one document or the ZIP bundle) or a provider CSV")
        parser.add_argument(
            "--source", choices=imports.SOURCES, help="default: from the file name (.csv: csv; .xml, .zip: mhlw_xml)"
        )
        parser.add_argument("--mapping", metavar="PROVIDER_NAME", help="CSV: the provider's saved column mapping")
        parser.add_argument(
            "--acknowledge-rechecks", action="store_true",
            help="apply even when corrections send records a physician already signed back for review",
        )  # fmt: skip

    def upload(self, path: Path, options: dict[str, Any]) -> Job:
        source = options["source"] or SOURCE_BY_SUFFIX.get(path.suffix.lower())
        if source is None:
            raise CommandError(
                "ファイル名から形式が分かりません。--source csv か --source mhlw_xml を指定してください / "
                "Cannot tell the format from the file name: give --source csv or --source mhlw_xml."
            )
        if source != imports.SOURCE_CSV and options["mapping"]:
            raise CommandError("--mapping は CSV のときだけ指定します / --mapping is for CSV files only.")
        mapping_id = self._mapping_id(source, options["mapping"])
        try:
            with path.open("rb") as upload:
                return imports.checkup_import_start(
                    upload=upload, file_name=path.name, source=source, mapping_id=mapping_id, acting_user=None,
                    enqueue=False,
                )  # fmt: skip
        except AppError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None

    def validate(self, job: Job) -> Job:
        validated = imports.checkup_import_validate(job_id=job.pk)
        assert validated is not None  # noqa: S101 - just created in this tenant
        return validated

    def _mapping_id(self, source: str, provider: str | None) -> int | None:
        """The pk of the tenant's mapping named ``provider`` (CSV only); a missing or unknown name lists them."""
        if source != imports.SOURCE_CSV:
            return None
        name = (provider or "").strip()
        found = CheckupCsvMapping.objects.filter(provider=name).values_list("pk", flat=True).first() if name else None
        if found is not None:
            return found
        known = ", ".join(CheckupCsvMapping.objects.order_by("provider").values_list("provider", flat=True)) or "-"
        if not name:
            raise CommandError(
                f"CSV には --mapping で健診機関の列の対応を指定してください / A CSV needs --mapping PROVIDER_NAME. "
                f"Known: {known}"
            )
        raise CommandError(f"列の対応 '{name}' はありません / No CSV mapping named '{name}'. Known: {known}")

    def refusal(self, job: Job, options: dict[str, Any]) -> str:
        """The file failed, nothing in it applies, or the corrections would reopen signed opinions without
        ``--acknowledge-rechecks`` (the page's tick box)."""
        if job.state == Job.State.FAILED:
            code = job.error_code
            reason = in_both(lambda: imports.error_message(code))
            return f"取り込めません / The file cannot be imported: {reason} ({code})"
        if options["dry_run"]:
            return ""
        if not imports.can_apply(job):
            return "反映できる件がありません（すべてエラー） / Nothing to apply: every record has an error."
        rechecks = imports.rechecks_to_acknowledge(job)  # the rule the page and the API follow
        if rechecks and not options["acknowledge_rechecks"]:
            return (
                f"反映すると、就業判定済みの {rechecks} 件が訂正された値で産業医の再確認に戻ります。"
                f"確認のうえ --acknowledge-rechecks を付けて実行してください（何も変更していません） / "
                f"Applying sends {rechecks} record(s) a physician already signed back for review: run again with "
                f"--acknowledge-rechecks to apply (nothing changed)."
            )
        return ""

    def confirm(self, job: Job, options: dict[str, Any]) -> Job:
        return imports.checkup_import_confirm(
            job=job, acting_user=None, enqueue=False, acknowledged=options["acknowledge_rechecks"]
        )

    def run_apply(self, tenant: Tenant, job: Job, progress) -> None:
        imports.checkup_import_apply(tenant=tenant, job_id=job.pk, progress=progress)

    def dry_run_notes(self, job: Job) -> None:
        counts = job.counts  # the preview's (the job is cancelled by now)
        if not (counts.get("added") or counts.get("updated") or counts.get("unchanged")):
            self.stdout.write("反映できる件はありません / Nothing in this file could be applied.")
        elif rechecks := counts.get("rechecks", 0):
            self.stdout.write(
                f"反映には --acknowledge-rechecks が必要です（就業判定済みの {rechecks} 件が再確認に戻ります） / "
                f"Applying needs --acknowledge-rechecks ({rechecks} signed record(s) go back for review)."
            )

    def report(self, job: Job) -> None:
        """The preview's counts (the job page's keys) and its first errors and warnings: row, ZIP entry,
        column and reason, never a value."""
        c = job.counts
        self.stdout.write(
            f"job {job.label_number}: rows {c.get('rows', 0)}, added {c.get('added', 0)}, "
            f"updated {c.get('updated', 0)}, rechecks {c.get('rechecks', 0)}, unchanged {c.get('unchanged', 0)}, "
            f"errors {c.get('errors', 0)}, warnings {c.get('warnings', 0)}"
        )
        lines = []
        for error in job.errors:
            kind = "warning" if error["code"] in imports.WARNINGS else "error"
            where = [f"row {error.get('row') or '-'}", error.get("source") or "",
                     imports.column_label(error.get("column") or "")]  # fmt: skip
            reason = in_both(lambda error=error: imports.row_error_message(error))
            lines.append(f"{kind} {' '.join(filter(None, where))}: {reason} [{error['code']}]")
        self.report_findings(lines)

    def applied_line(self, applied: dict[str, int]) -> str:
        return (
            f"added {applied['added']}, updated {applied['updated']}, unchanged {applied['unchanged']}, "
            f"judged {applied['judged']}, errors {applied['errors']}"
        )
