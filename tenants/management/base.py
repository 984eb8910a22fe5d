"""Base classes for operator commands: owner database role, ``--tenant`` resolution."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from healthapp.db import owner_role
from tenants.context import tenant_context
from tenants.models import Tenant


class OperatorCommand(BaseCommand):
    """A command our operators run: it connects as the owner role, not the application role."""

    def execute(self, *args: Any, **options: Any) -> Any:
        with owner_role():
            return super().execute(*args, **options)


def resolve_tenant(slug: str) -> Tenant:
    """Return the tenant with ``slug``; a wrong slug is a CommandError that lists the known ones."""
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "-"
        raise CommandError(f"テナント '{slug}' は存在しません / No tenant with slug '{slug}'. Known: {known}") from None


class TenantCommand(OperatorCommand):
    """An operator command about one tenant: ``--tenant SLUG`` is resolved (a wrong slug fails
    clearly) and ``handle_tenant`` runs inside that tenant's context.

    Commands that may also act without a tenant (e.g. creating an operator) set
    ``tenant_required = False`` and receive ``tenant=None``.
    """

    tenant_required = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenant", required=self.tenant_required, metavar="SLUG", help="Tenant slug / テナント識別子"
        )

    def handle(self, *args: Any, **options: Any) -> str | None:
        slug = options.pop("tenant", None)
        if not slug:
            return self.handle_tenant(None, *args, **options)
        tenant = resolve_tenant(slug)
        with tenant_context(tenant):
            return self.handle_tenant(tenant, *args, **options)

    def handle_tenant(self, tenant: Tenant | None, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError
