from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.archive import archive_from_settings
from audit.services import verify_all, verify_archive_fully
from tenants.management.base import TenantCommand
from tenants.models import Tenant


class Command(TenantCommand):
    help = (
        "監査ログのハッシュチェーンを検証します / Recompute the audit hash chains (all, or one --tenant); "
        "exits non-zero and names the first broken seq on any break. Each chain's shipping and pruning "
        "points are checked against the archive (S3 or the local folder) unless --no-archive."
    )
    tenant_required = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-archive",
            action="store_true",
            help="アーカイブを読まずに検証します / Do not read the archive (the database vouches for its anchors)",
        )

        parser.add_argument(
            "--full-archive",
            action="store_true",
            help="アーカイブの全バッチを読んで検証します / Read and check every archived batch, and compare the "
            "archived events still in the database",
        )

    def handle_tenant(self, tenant: Tenant | None, *args: Any, **options: Any) -> None:
        archive = None if options["no_archive"] else archive_from_settings()
        reports = verify_all(tenant=tenant, archive=archive)
        if options["full_archive"] and archive is not None:
            for at, report in enumerate(reports):
                if report.ok:
                    whole = verify_archive_fully(report.chain, archive)
                    if not whole.ok:
                        reports[at] = whole
                    else:
                        self.stdout.write(f"chain {report.chain}: archive OK ({whole.events} events archived)")
        broken = [r for r in reports if not r.ok]
        for report in reports:
            if report.ok:
                self.stdout.write(f"chain {report.chain}: OK ({report.events} events, last seq {report.last_seq})")
            else:
                self.stderr.write(f"chain {report.chain}: BROKEN at seq {report.broken_seq}: {report.problem}")
        if broken:
            raise CommandError(
                f"監査ログの改ざんまたは欠落を検出しました / audit chain broken in {len(broken)} chain(s): "
                + ", ".join(f"{r.chain}@{r.broken_seq}" for r in broken)
            )
        self.stdout.write(self.style.SUCCESS(f"{len(reports)} chain(s) verified"))
