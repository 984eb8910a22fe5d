"""manage.py import_roster --tenant SLUG FILE [--mode full|partial] [--dry-run] [--create-offices] [--clear-blanks]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from accounts import roster_import
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.management.base import TenantCommand


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

    def handle_tenant(self, tenant, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"ファイルがありません / No such file: {path}")
        try:
            with path.open("rb") as upload:
                job = roster_import.roster_import_start(
                    upload=upload, file_name=path.name, mode=options["mode"],
                    create_offices=options["create_offices"], clear_blanks=options["clear_blanks"],
                    acting_user=None, enqueue=False,
                )  # fmt: skip
            # The command works in-process (no worker needed) through the same services.
            job = roster_import.roster_import_validate(job_id=job.pk)
        except AppError as exc:
            raise CommandError(exc.message) from None
        self._report(job)
        if job.state == Job.State.FAILED:
            raise CommandError(roster_import.error_message(job.error_code))
        if options["dry_run"]:
            self.stdout.write("ドライラン: 変更していません / Dry run: nothing changed.")
            return
        if not roster_import.can_apply(job):
            raise CommandError("全件モードではエラーのあるファイルは反映できません / Full mode: the file has errors.")
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
        with tqdm(total=job.rows_total, unit="rows", disable=options["verbosity"] == 0) as bar:

            def progress(current: Job) -> None:
                bar.update(current.rows_done - bar.n)

            job = roster_import.roster_import_run(job_id=job.pk, progress=progress)
            bar.update(job.rows_total - bar.n)
        applied = job.counts["applied"]
        self.stdout.write(
            self.style.SUCCESS(
                f"反映しました / Applied: added {applied['added']}, updated {applied['updated']}, "
                f"deactivated {applied['deactivated']}, unchanged {applied['unchanged']} (job {job.pk})"
            )
        )

    def _report(self, job: Job) -> None:
        c = job.counts
        self.stdout.write(
            f"job {job.pk}: rows {c.get('rows', 0)}, added {c.get('added', 0)}, updated {c.get('updated', 0)}, "
            f"deactivated {c.get('deactivated', 0)}, unchanged {c.get('unchanged', 0)}, errors {c.get('errors', 0)}"
        )
        for error in job.errors[:50]:
            column = roster_import.COLUMN_LABELS.get(error.get("column") or "", "")
            self.stdout.write(f"  row {error.get('row') or '-'} {column}: {roster_import.error_message(error['code'])}")
        if len(job.errors) > 50:
            self.stdout.write(f"  … {len(job.errors) - 50} more")
