import datetime as dt

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tenants.management.base import OperatorCommand
from tenants.models import Tenant
from tenants.services import tenant_create


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"日付は YYYY-MM-DD で指定してください / Dates are YYYY-MM-DD: {value!r}") from exc


class Command(OperatorCommand):
    help = "Create a tenant (company or health-insurance association). テナントを作成します。"

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=["company", "insurer"])
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--contract-start", type=_date)
        parser.add_argument("--contract-end", type=_date)

    def handle(self, *args, **options):
        if Tenant.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"識別子 '{options['slug']}' は使用済みです / Slug already in use")
        try:
            tenant = tenant_create(
                kind=options["kind"],
                name=options["name"],
                slug=options["slug"],
                contract_start=options["contract_start"],
                contract_end=options["contract_end"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug} (id {tenant.pk})"))
