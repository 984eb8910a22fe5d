from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        from audit import receivers  # noqa: F401  (connects the signal receivers)
