from django.apps import AppConfig


class CheckupsConfig(AppConfig):
    name = "checkups"

    def ready(self) -> None:
        from checkups import tasks  # noqa: F401  registers the checkup import's tasks with healthapp.jobs
