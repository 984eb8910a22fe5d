from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CheckupsConfig(AppConfig):
    name = "checkups"
    verbose_name = _("健康診断")

    def ready(self) -> None:
        from checkups import tasks  # noqa: F401  registers the checkup import's tasks with healthapp.jobs
