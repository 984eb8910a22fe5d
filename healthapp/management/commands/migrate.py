from django.core.management.commands.migrate import Command as DjangoMigrate

from healthapp.db import use_owner_role


class Command(DjangoMigrate):
    """Django's migrate, connected as the table-owner role (DATABASE_OWNER_URL)."""

    def execute(self, *args, **options):
        use_owner_role(options.get("database") or "default")
        return super().execute(*args, **options)
