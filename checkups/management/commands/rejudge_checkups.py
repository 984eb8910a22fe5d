"""manage.py rejudge_checkups --tenant SLUG [--fiscal-year N] [--all] [--dry-run]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from tqdm import tqdm

from checkups import services
from tenants.context import tenant_context
from tenants.management.base import TenantCommand, resolve_tenant


class Command(TenantCommand):
    help = (
        "健診結果を現在の判定基準で判定し直します（以前の判定は残ります）。 / Judge a tenant's checkups again under "
        "the current criteria versions (earlier judgements stay); by default only those not yet judged under "
        "the current grading version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--fiscal-year", type=int, help="only this fiscal year (e.g. 2025 for 2025-04..2026-03)")
        parser.add_argument("--all", action="store_true", help="every record, also those judged under the current "
                            "grading version (e.g. after a new guidance version)")  # fmt: skip
        parser.add_argument("--dry-run", action="store_true", help="only count the records, judge nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        # Not inside one tenant context for the whole run (on PostgreSQL that is one transaction): each
        # chunk commits on its own, so an interrupted run keeps what it judged.
        tenant = resolve_tenant(options["tenant"])
        with tenant_context(tenant):
            pending = services.checkup_rejudge_pending(fiscal_year=options["fiscal_year"], everything=options["all"])
            label = services.JudgingCriteria.current().label
        self.stdout.write(f"判定し直す健診 / Records to judge again under {label}: {len(pending)}")
        if options["dry_run"] or not pending:
            self.stdout.write("変更していません / Nothing changed.")
            return
        with tqdm(total=len(pending), unit="records", disable=options["verbosity"] == 0) as bar:
            services.checkup_rejudge(tenant=tenant, record_ids=pending, progress=lambda done: bar.update(done - bar.n))
        self.stdout.write(self.style.SUCCESS(f"判定しました / Judged {len(pending)} records under {label}."))
