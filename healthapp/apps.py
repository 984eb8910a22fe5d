from django.apps import AppConfig


class HealthappConfig(AppConfig):
    name = "healthapp"
    verbose_name = "healthapp"

    def ready(self) -> None:
        from healthapp import checks  # noqa: F401  (registers the system checks)
