from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "アカウント / Accounts"

    def ready(self) -> None:
        from accounts import roster_tasks  # noqa: F401  registers the roster import's tasks with healthapp.jobs
