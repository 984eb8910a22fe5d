from tenants.allowlist import allowlist_networks, allowlist_replace
from tenants.context import tenant_context
from tenants.management.base import OperatorCommand, resolve_tenant


class Command(OperatorCommand):
    help = (
        "Remove a tenant's IP allowlist: the way back in when its admins locked themselves out (audited). "
        "テナントの接続元IP制限を解除します。"
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")

    def handle(self, *args, **options):
        tenant = resolve_tenant(options["tenant"])
        with tenant_context(tenant):
            removed = len(allowlist_networks())
            allowlist_replace(networks=[], own_address="", confirmed=True)  # audited as tenant.allowlist.changed
        self.stdout.write(f"{tenant.slug}: 接続元IP制限を解除しました / allowlist cleared ({removed} entries removed)")
