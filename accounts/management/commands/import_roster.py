"""manage.py import_roster --tenant SLUG FILE [--mode full|partial] [--dry-run] [--create-offices] [--clear-blanks]
[--acknowledge-deactivations]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from accounts import roster_import
from healthapp import jobs
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tenants.management.base import TenantCommand, resolve_tenant
from tenants.models import Tenant

SHOWN_ERRORS = 50


class Command(TenantCommand):
    help = (
        "名簿 CSV を取り込みます（画面と同じ検証・反映）。--dry-run は検証結果だけを表示します。 / "
        "Import a roster CSV with the same service as the upload page; --dry-run only validates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="CSV file (UTF-8, UTF-8 with BOM or CP932)")
        parser.add_argument("--mode", choices=[roster_import.PARTIAL, roster_import.FULL], default="partial")
        parser.add_argument("--dry-run", action="store_true", help="validate and show the diff, change nothing")
        parser.add_argument("--create-offices", action="store_true", help="create unknown offices/departments")
        parser.add_argument("--clear-blanks", action="store_true", help="a blank cell clears the stored value")
        parser.add_argument(
            "--acknowledge-deactivations", action="store_true",
            help="apply a full-mode import that deactivates members missing from the file (the page's tick box)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        # Not TenantCommand.handle: on PostgreSQL its tenant context is one transaction for the whole command.
        # Here the preview commits first (a refusal after it must not leave a stored upload without its job)
        # and the apply commits chunk by chunk, as on a worker.
        tenant = resolve_tenant(options["tenant"])
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"ファイルがありません / No such file: {path}")
        with transaction.atomic(), tenant_context(tenant):
            job = self._preview(path, options)
            self._report(job)
            refusal = self._refusal(job, options)
            if not refusal and not options["dry_run"]:
                try:
                    job = roster_import.roster_import_confirm(
                        job=job, acting_user=None, enqueue=False,
                        deactivations_acknowledged=options["acknowledge_deactivations"],
                    )  # fmt: skip
                except AppError as exc:  # another roster import is being applied
                    refusal = f"{exc.message} ({exc.code})"
            if job.state == Job.State.VALIDATED:
                # A dry run or a refusal: as the page's 取り消し, the upload is deleted and no preview is left
                # for a tenant admin to apply from the page.
                jobs.job_cancel(job_id=job.pk)
        if refusal:
            raise CommandError(refusal)
        if options["dry_run"]:
            self.stdout.write("ドライラン: 変更していません / Dry run: nothing changed.")
            if job.options.get("mode") == roster_import.FULL and job.counts.get("deactivated"):
                self.stdout.write(
                    "反映には --acknowledge-deactivations が必要です / Applying needs --acknowledge-deactivations."
                )
            return
        self._apply(tenant, job, quiet=options["verbosity"] == 0)

    def _preview(self, path: Path, options: dict[str, Any]) -> Job:
        """Upload and dry run in-process (no worker needed), through the page's services."""
        try:
            with path.open("rb") as upload:
                job = roster_import.roster_import_start(
                    upload=upload, file_name=path.name, mode=options["mode"],
                    create_offices=options["create_offices"], clear_blanks=options["clear_blanks"],
                    acting_user=None, enqueue=False,
                )  # fmt: skip
        except AppError as exc:
            raise CommandError(exc.message) from None
        validated = roster_import.roster_import_validate(job_id=job.pk)
        assert validated is not None  # noqa: S101 - just created in this tenant
        return validated

    def _refusal(self, job: Job, options: dict[str, Any]) -> str:
        """Why the job is not applied ('' when it may be)."""
        if job.state == Job.State.FAILED:
            return roster_import.error_message(job.error_code)
        if options["dry_run"]:
            return ""
        if not roster_import.can_apply(job):
            return "全件モードではエラーのあるファイルは反映できません / Full mode: the file has errors."
        deactivated = job.counts.get("deactivated", 0)
        if deactivated and not options["acknowledge_deactivations"]:
            return (
                f"反映すると、ファイルにない {deactivated} 人の名簿とログインが無効になります。確認のうえ "
                f"--acknowledge-deactivations を付けて実行してください（何も変更していません） / Applying deactivates "
                f"{deactivated} member(s) missing from the file, logins included: run again with "
                f"--acknowledge-deactivations to apply (nothing changed)."
            )
        return ""

    def _apply(self, tenant: Tenant, job: Job, *, quiet: bool) -> None:
        with tqdm(total=job.rows_total, unit="rows", disable=quiet) as bar:

            def progress(current: Job) -> None:
                bar.update(current.rows_done - bar.n)

            try:
                roster_import.roster_import_apply(tenant=tenant, job_id=job.pk, progress=progress)
            except Exception as exc:
                # As the worker does: the job fails, and what its committed chunks changed is audited.
                jobs.job_apply_failed(tenant=tenant, job_id=job.pk, action="roster.import_failed")
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
                f"deactivated {applied['deactivated']}, unchanged {applied['unchanged']} (job {job.label_number})"
            )
        )

    def _report(self, job: Job) -> None:
        c = job.counts
        self.stdout.write(
            f"job {job.label_number}: rows {c.get('rows', 0)}, added {c.get('added', 0)}, "
            f"updated {c.get('updated', 0)}, deactivated {c.get('deactivated', 0)}, "
            f"unchanged {c.get('unchanged', 0)}, errors {c.get('errors', 0)}"
        )
        for error in job.errors[:SHOWN_ERRORS]:
            column = roster_import.COLUMN_LABELS.get(error.get("column") or "", "")
            self.stdout.write(f"  row {error.get('row') or '-'} {column}: {roster_import.error_message(error['code'])}")
        if len(job.errors) > SHOWN_ERRORS:
            self.stdout.write(f"  … {len(job.errors) - SHOWN_ERRORS} more")
