"""What the importers' operator commands share (accounts' import_roster, checkups' import_checkups): the
page's steps in-process, upload → dry run → report → confirm → apply with a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import translation
from tqdm import tqdm

from healthapp import jobs
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tenants.management.base import TenantCommand, resolve_tenant
from tenants.models import Tenant

SHOWN_ERRORS = 50


def in_both(say: Callable[[], object]) -> str:
    """A reason in Japanese and English, as the commands' own lines are (an operator's terminal may be
    either's); once where both read the same."""
    with translation.override("ja"):
        ja = str(say())
    with translation.override("en"):
        en = str(say())
    return ja if ja == en else f"{ja} / {en}"


class ImportCommand(TenantCommand):
    """An importer's command. Not one tenant context for the whole run (on PostgreSQL that is one
    transaction): the preview commits first, then the apply commits chunk by chunk as on a worker. A dry
    run or a refusal cancels the preview, as the page's 取り消し (its upload deleted, nothing left for a
    tenant admin to apply from the page), and is raised after that commit."""

    unit = "rows"  # of the progress bar
    failed_action = ""  # the audit action of an apply that stopped on an error, as the worker records it

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="validate and show the counts, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = resolve_tenant(options["tenant"])
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"ファイルがありません / No such file: {path}")
        # The upload commits on its own, so that whatever stops the dry run after it (Ctrl-C, an error)
        # finds a job to close and a stored file to delete, never an orphaned sealed file.
        with transaction.atomic(), tenant_context(tenant):
            job = self.upload(path, options)
        try:
            with transaction.atomic(), tenant_context(tenant):
                job = self.validate(job)
                self.report(job)
                refusal = self.refusal(job, options)
                if not refusal and not options["dry_run"]:
                    try:
                        job = self.confirm(job, options)
                    except AppError as exc:  # e.g. another import of the kind is being applied
                        refusal = f"{exc.message} ({exc.code})"
                if job.state == Job.State.VALIDATED:
                    jobs.job_cancel(job_id=job.pk)
        except BaseException:
            jobs.job_abandon(tenant=tenant, job_id=job.pk)
            raise
        if refusal:
            raise CommandError(refusal)
        if options["dry_run"]:
            self.stdout.write("ドライラン: 変更していません / Dry run: nothing changed.")
            self.dry_run_notes(job)
            return
        self.apply(tenant, job, quiet=options["verbosity"] == 0)

    # --- what each importer says ---------------------------------------------------------------------
    def upload(self, path: Path, options: dict[str, Any]) -> Job:
        """Store the file as the page's upload does (a CommandError for a file refused outright)."""
        raise NotImplementedError

    def validate(self, job: Job) -> Job:
        """The dry run in-process (no worker needed), through the page's service."""
        raise NotImplementedError

    def refusal(self, job: Job, options: dict[str, Any]) -> str:
        """Why the job is not applied ('' when it may be)."""
        raise NotImplementedError

    def confirm(self, job: Job, options: dict[str, Any]) -> Job:
        raise NotImplementedError

    def run_apply(self, tenant: Tenant, job: Job, progress) -> None:
        raise NotImplementedError

    def report(self, job: Job) -> None:
        """The preview's counts and its first findings: row, column and reason, never a value."""
        raise NotImplementedError

    def applied_line(self, applied: dict[str, int]) -> str:
        raise NotImplementedError

    def dry_run_notes(self, job: Job) -> None:
        """What applying would further need (a flag), after a dry run."""

    # --- shared --------------------------------------------------------------------------------------
    def report_findings(self, lines: list[str]) -> None:
        for line in lines[:SHOWN_ERRORS]:
            self.stdout.write(f"  {line}")
        if len(lines) > SHOWN_ERRORS:
            self.stdout.write(f"  … {len(lines) - SHOWN_ERRORS} more")

    def apply(self, tenant: Tenant, job: Job, *, quiet: bool) -> None:
        with tqdm(total=job.rows_total, unit=self.unit, disable=quiet) as bar:

            def progress(current: Job) -> None:
                bar.update(current.rows_done - bar.n)

            try:
                self.run_apply(tenant, job, progress)
            except Exception as exc:
                # As the worker does: the job fails, and what its committed chunks changed is audited.
                jobs.job_apply_failed(tenant=tenant, job_id=job.pk, action=self.failed_action)
                raise CommandError(
                    f"反映中にエラーが発生しました。反映済みの分は残ります / The apply failed; chunks already applied "
                    f"stay (job {job.label_number}; --traceback shows the error)."
                ) from exc
            except BaseException:
                # Ctrl-C: the chunk in flight rolls back; the job stops for good rather than being picked up
                # by a worker's stalled-job sweep behind the operator's back.
                jobs.job_apply_failed(tenant=tenant, job_id=job.pk, action=self.failed_action, code="interrupted")
                raise
            bar.update(job.rows_total - bar.n)
        with tenant_context(tenant):
            job = Job.objects.get(pk=job.pk)
        if job.state != Job.State.DONE:
            raise CommandError(f"反映が終わっていません / The job did not finish: {job.state} (job {job.label_number})")
        line = self.applied_line(job.counts["applied"])
        self.stdout.write(self.style.SUCCESS(f"反映しました / Applied: {line} (job {job.label_number})"))
