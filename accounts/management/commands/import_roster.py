"""manage.py import_roster --tenant SLUG FILE [--mode full|partial] [--dry-run] [--create-offices] [--clear-blanks]
[--acknowledge-deactivations]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import roster_import
from healthapp.errors import AppError
from healthapp.job_command import ImportCommand, in_both
from healthapp.models import Job
from tenants.models import Tenant


class Command(ImportCommand):
    help = (
        "名簿 CSV を取り込みます（画面と同じ検証・反映）。--dry-run は検証結果だけを表示します。 / "
        "Import a roster CSV with the same service as the upload page; --dry-run only validates."
    )
    failed_action = "roster.import_failed"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="CSV file (UTF-8, UTF-8 with BOM or CP932)")
        parser.add_argument("--mode", choices=[roster_import.PARTIAL, roster_import.FULL], default="partial")
        parser.add_argument("--create-offices", action="store_true", help="create unknown offices/departments")
        parser.add_argument("--clear-blanks", action="store_true", help="a blank cell clears the stored value")
        parser.add_argument(
            "--acknowledge-deactivations", action="store_true",
            help="apply a full-mode import that deactivates members missing from the file (the page's tick box)",
        )  # fmt: skip

    def upload(self, path: Path, options: dict[str, Any]) -> Job:
        try:
            with path.open("rb") as upload:
                return roster_import.roster_import_start(
                    upload=upload, file_name=path.name, mode=options["mode"],
                    create_offices=options["create_offices"], clear_blanks=options["clear_blanks"],
                    acting_user=None, enqueue=False,
                )  # fmt: skip
        except AppError as exc:
            raise CommandError(exc.message) from None

    def validate(self, job: Job) -> Job:
        validated = roster_import.roster_import_validate(job_id=job.pk)
        assert validated is not None  # noqa: S101 - just created in this tenant
        return validated

    def refusal(self, job: Job, options: dict[str, Any]) -> str:
        if job.state == Job.State.FAILED:
            return in_both(lambda: roster_import.error_message(job.error_code))
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

    def confirm(self, job: Job, options: dict[str, Any]) -> Job:
        return roster_import.roster_import_confirm(
            job=job, acting_user=None, enqueue=False, acknowledged=options["acknowledge_deactivations"]
        )

    def run_apply(self, tenant: Tenant, job: Job, progress) -> None:
        roster_import.roster_import_apply(tenant=tenant, job_id=job.pk, progress=progress)

    def dry_run_notes(self, job: Job) -> None:
        if job.options.get("mode") == roster_import.FULL and job.counts.get("deactivated"):
            self.stdout.write(
                "反映には --acknowledge-deactivations が必要です / Applying needs --acknowledge-deactivations."
            )

    def report(self, job: Job) -> None:
        c = job.counts
        self.stdout.write(
            f"job {job.label_number}: rows {c.get('rows', 0)}, added {c.get('added', 0)}, "
            f"updated {c.get('updated', 0)}, deactivated {c.get('deactivated', 0)}, "
            f"unchanged {c.get('unchanged', 0)}, errors {c.get('errors', 0)}"
        )
        if c.get("deactivated"):  # what the page's tick says before anyone is locked out (counts, no names)
            logins = roster_import.logins_turned_off(job)
            self.stdout.write(f"  うちログインのある人 {logins.count} 人 / of them with a login: {logins.count}")
            if logins.last_org_admin:
                self.stdout.write(self.style.WARNING(
                    "  反映するとこのテナントの組織管理者が一人もいなくなります / Applying leaves the tenant "
                    "without an active org admin (組織管理者)."
                ))  # fmt: skip
        self.report_findings([
            f"row {e.get('row') or '-'} {roster_import.COLUMN_LABELS.get(e.get('column') or '', '')}: "
            f"{in_both(lambda e=e: roster_import.error_message(e['code']))}"
            for e in job.errors
        ])  # fmt: skip

    def applied_line(self, applied: dict[str, int]) -> str:
        return (
            f"added {applied['added']}, updated {applied['updated']}, deactivated {applied['deactivated']}, "
            f"unchanged {applied['unchanged']}"
        )
