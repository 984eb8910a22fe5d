"""manage.py import_checkups --tenant SLUG FILE [--source csv|mhlw_xml] [--mapping PROVIDER_NAME] [--dry-run]
[--acknowledge-rechecks]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from checkups import imports
from checkups.models import CheckupCsvMapping
from healthapp import jobs
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tenants.management.base import TenantCommand, resolve_tenant
from tenants.models import Tenant

SOURCE_BY_SUFFIX = {".csv": imports.SOURCE_CSV, ".xml": imports.SOURCE_XML, ".zip": imports.SOURCE_XML}
SHOWN_ERRORS = 50


class Command(TenantCommand):
    help = (
        "健診結果ファイル（特定健診 XML・ZIP、健診機関の CSV）を取り込みます（画面と同じ検証・反映・判定）。"
        "--dry-run は検証結果だけを表示します。 / Import a checkup results file (MHLW XML or ZIP, provider CSV) "
        "with the same services as the upload page; --dry-run only validates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="MHLW XML (one document or the ZIP bundle) or a provider CSV")
        parser.add_argument(
            "--source", choices=imports.SOURCES, help="default: from the file name (.csv: csv; .xml, .zip: mhlw_xml)"
        )
        parser.add_argument("--mapping", metavar="PROVIDER_NAME", help="CSV: the provider's saved column mapping")
        parser.add_argument("--dry-run", action="store_true", help="validate and show the counts, change nothing")
        parser.add_argument(
            "--acknowledge-rechecks", action="store_true",
            help="apply even when corrections send records a physician already signed back for review",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        # Not one tenant context for the whole run (on PostgreSQL that is one transaction): the preview
        # commits first, then the apply commits chunk by chunk as on the worker. A refusal is raised after
        # the preview's commit, so the job's end (and the deletion of its upload) is not rolled back.
        tenant = resolve_tenant(options["tenant"])
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"ファイルがありません / No such file: {path}")
        source = options["source"] or SOURCE_BY_SUFFIX.get(path.suffix.lower())
        if source is None:
            raise CommandError(
                "ファイル名から形式が分かりません。--source csv か --source mhlw_xml を指定してください / "
                "Cannot tell the format from the file name: give --source csv or --source mhlw_xml."
            )
        if source != imports.SOURCE_CSV and options["mapping"]:
            raise CommandError("--mapping は CSV のときだけ指定します / --mapping is for CSV files only.")
        with transaction.atomic(), tenant_context(tenant):
            job = self._preview(path, source, self._mapping_id(source, options["mapping"]))
            self._report(job)
            applicable = imports.can_apply(job)
            refusal = self._refusal(job, dry_run=options["dry_run"], acknowledged=options["acknowledge_rechecks"])
            if applicable and not refusal and not options["dry_run"]:
                try:
                    job = imports.checkup_import_confirm(
                        job=job, acting_user=None, enqueue=False, rechecks_acknowledged=options["acknowledge_rechecks"]
                    )
                except AppError as exc:  # another checkup import is being applied
                    refusal = f"{exc.message} ({exc.code})"
            if job.state == Job.State.VALIDATED:  # dry run or refused: as the page's 取り消し, the upload is deleted
                jobs.job_cancel(job_id=job.pk)
        if refusal:
            raise CommandError(refusal)
        if options["dry_run"]:
            self._dry_run_notes(job, applicable=applicable)
            return
        self._apply(tenant, job, quiet=options["verbosity"] == 0)

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

    def _preview(self, path: Path, source: str, mapping_id: int | None) -> Job:
        """Upload and dry run in-process (no worker needed), through the page's services."""
        try:
            with path.open("rb") as upload:
                job = imports.checkup_import_start(
                    upload=upload, file_name=path.name, source=source, mapping_id=mapping_id, acting_user=None,
                    enqueue=False,
                )  # fmt: skip
        except AppError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        validated = imports.checkup_import_validate(job_id=job.pk)
        assert validated is not None  # noqa: S101 - just created in this tenant
        return validated

    def _refusal(self, job: Job, *, dry_run: bool, acknowledged: bool) -> str:
        """Why the job is not applied ('' when it may be): the file failed, nothing in it applies, or the
        corrections would reopen signed opinions without ``--acknowledge-rechecks`` (the page's tick box)."""
        if job.state == Job.State.FAILED:
            code = job.error_code
            return f"取り込めません / The file cannot be imported: {imports.error_message(code)} ({code})"
        if dry_run:
            return ""
        if not imports.can_apply(job):
            return "反映できる件がありません（すべてエラー） / Nothing to apply: every record has an error."
        rechecks = imports.rechecks_to_acknowledge(job)  # the rule the page and the API follow
        if rechecks and not acknowledged:
            return (
                f"反映すると、就業判定済みの {rechecks} 件が訂正された値で産業医の再確認に戻ります。"
                f"確認のうえ --acknowledge-rechecks を付けて実行してください（何も変更していません） / "
                f"Applying sends {rechecks} record(s) a physician already signed back for review: run again with "
                f"--acknowledge-rechecks to apply (nothing changed)."
            )
        return ""

    def _dry_run_notes(self, job: Job, *, applicable: bool) -> None:
        self.stdout.write("ドライラン: 変更していません / Dry run: nothing changed.")
        if not applicable:
            self.stdout.write("反映できる件はありません / Nothing in this file could be applied.")
        elif rechecks := job.counts.get("rechecks", 0):
            self.stdout.write(
                f"反映には --acknowledge-rechecks が必要です（就業判定済みの {rechecks} 件が再確認に戻ります） / "
                f"Applying needs --acknowledge-rechecks ({rechecks} signed record(s) go back for review)."
            )

    def _apply(self, tenant: Tenant, job: Job, *, quiet: bool) -> None:
        with tqdm(total=job.rows_total, unit="records", disable=quiet) as bar:

            def progress(current: Job) -> None:
                bar.update(current.rows_done - bar.n)

            try:
                imports.checkup_import_apply(tenant=tenant, job_id=job.pk, progress=progress)
            except Exception as exc:
                # As the worker does: the job fails, and what its committed chunks changed is audited.
                jobs.job_apply_failed(tenant=tenant, job_id=job.pk, action="checkup.import_failed")
                raise CommandError(
                    f"反映中にエラーが発生しました。反映済みの分は残ります / The apply failed; chunks already applied "
                    f"stay (job {job.label_number}; --traceback shows the error)."
                ) from exc
            bar.update(job.rows_total - bar.n)
        with tenant_context(tenant):
            job = Job.objects.get(pk=job.pk)
        if job.state != Job.State.DONE:
            raise CommandError(f"反映が終わっていません / The job did not finish: {job.state} (job {job.label_number})")
        applied = job.counts["applied"]
        self.stdout.write(
            self.style.SUCCESS(
                f"反映しました / Applied: added {applied['added']}, updated {applied['updated']}, "
                f"unchanged {applied['unchanged']}, judged {applied['judged']}, errors {applied['errors']} "
                f"(job {job.label_number})"
            )
        )

    def _report(self, job: Job) -> None:
        """The preview's counts (the job page's keys) and its first errors and warnings: row, ZIP entry,
        column and reason, never a value."""
        c = job.counts
        self.stdout.write(
            f"job {job.label_number}: rows {c.get('rows', 0)}, added {c.get('added', 0)}, "
            f"updated {c.get('updated', 0)}, rechecks {c.get('rechecks', 0)}, unchanged {c.get('unchanged', 0)}, "
            f"errors {c.get('errors', 0)}, warnings {c.get('warnings', 0)}"
        )
        for error in job.errors[:SHOWN_ERRORS]:
            kind = "warning" if error["code"] in imports.WARNINGS else "error"
            where = [f"row {error.get('row') or '-'}", error.get("source") or "",
                     imports.column_label(error.get("column") or "")]  # fmt: skip
            reason = imports.row_error_message(error)
            self.stdout.write(f"  {kind} {' '.join(filter(None, where))}: {reason} [{error['code']}]")
        if len(job.errors) > SHOWN_ERRORS:
            self.stdout.write(f"  … {len(job.errors) - SHOWN_ERRORS} more")
