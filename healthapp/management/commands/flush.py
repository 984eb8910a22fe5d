from django.core.management.commands.flush import Command as DjangoFlush

from healthapp.db import use_app_role, use_owner_role


class Command(DjangoFlush):
    """Django's flush, as the owner role: TRUNCATE ignores row-level security, so the application
    role is never granted it. The connection returns to the application role afterwards."""

    def execute(self, *args, **options):
        alias = options.get("database") or "default"
        use_owner_role(alias)
        try:
            return super().execute(*args, **options)
        finally:
            use_app_role(alias)
