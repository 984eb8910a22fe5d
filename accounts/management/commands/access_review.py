from accounts.selectors import ACCESS_REVIEW_HEADER, access_review, access_review_table
from healthapp.csvsafe import csv_bytes
from tenants.management.base import TenantCommand


class Command(TenantCommand):
    help = "List every user of a tenant with their effective labels, scope, source, last login, MFA and flags."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--csv", action="store_true", help="CSV (formula-injection safe) instead of a table")

    def handle_tenant(self, tenant, *args, **options):
        header, table = ACCESS_REVIEW_HEADER, access_review_table(access_review())
        if options["csv"]:
            self.stdout.write(csv_bytes(header, table, bom=False).decode(), ending="")
            return
        for row in [header, *table]:
            self.stdout.write("  ".join(str(cell) for cell in row))
