from django.apps import AppConfig


class HealthappConfig(AppConfig):
    name = "healthapp"
    verbose_name = "healthapp"

    def ready(self) -> None:
        from healthapp import checks, lookups  # noqa: F401  (registers system checks and the __any lookup)
