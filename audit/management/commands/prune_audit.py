from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from audit.services import prune_expired
from tenants.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "保存期間を過ぎ、出荷・検証済みの監査ログを削除します / Delete audit events older than "
        "AUDIT_RETENTION_MONTHS that are already shipped and whose chain verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be deleted")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        self.stdout.write(f"retention: {settings.AUDIT_RETENTION_MONTHS} months{' (dry run)' if dry_run else ''}")
        for result in prune_expired(dry_run=dry_run):
            if result.refused:
                self.stderr.write(f"chain {result.chain}: refused: {result.refused}")
            elif result.through_seq:
                verb = "would delete" if dry_run else f"deleted {result.deleted}"
                self.stdout.write(f"chain {result.chain}: {verb} events through seq {result.through_seq}")
