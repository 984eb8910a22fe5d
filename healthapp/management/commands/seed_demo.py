from healthapp.demo import seed_demo
from tenants.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Create the fictional demo tenants, roster and a login for every role; print the logins. "
        "Run again to get fresh passwords. デモ用テナントとログインを作成します。"
    )

    def handle(self, *args, **options):
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo logins (passwords shown once / パスワードは一度だけ表示):"))
        self.stdout.write(f"  {'tenant':<12} {'role':<14} {'e-mail':<36} password")
        for login in logins:
            self.stdout.write(f"  {login.tenant:<12} {login.role:<14} {login.email:<36} {login.password}")
