from django.core.management.commands.flush import Command as DjangoFlush

from healthapp.db import owner_role


class Command(DjangoFlush):
    """Django's flush, as the owner role: TRUNCATE ignores row-level security, so the application
    role is never granted it. The connection returns to the application role afterwards."""

    def execute(self, *args, **options):
        with owner_role(options.get("database") or "default"):
            return super().execute(*args, **options)
