from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from accounts.registration import pending_registrations_purge
from tenants.context import tenant_context
from tenants.management.base import TenantCommand
from tenants.models import Tenant


class Command(TenantCommand):
    help = (
        "確認リンクの期限が切れた自己登録を削除します（--tenant がなければ全テナント） / Delete self-registrations "
        "whose confirmation link has expired (every tenant unless --tenant). Runs daily on beat as well."
    )
    tenant_required = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted")

    def handle_tenant(self, tenant: Tenant | None, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        for each in [tenant] if tenant else Tenant.objects.order_by("pk"):
            with tenant_context(each):
                count = pending_registrations_purge(dry_run=dry_run)
            self.stdout.write(f"{each.slug}: {'would delete' if dry_run else 'deleted'} {count}")
