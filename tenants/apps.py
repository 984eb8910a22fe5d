from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("テナント")

    def ready(self) -> None:
        from tenants import keys, rls

        # Runs after every app's migrations, so new tenant tables are covered without remembering to.
        post_migrate.connect(rls.apply_after_migrate, dispatch_uid="tenants.rls.apply_after_migrate")
        post_migrate.connect(keys.apply_after_migrate, dispatch_uid="tenants.keys.apply_after_migrate")
