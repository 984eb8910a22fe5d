from healthapp.demo import demo_registration_samples, seed_demo
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
        self.stdout.write(
            "  Every role but employee sets up a second factor at first login (an authenticator app, or a code "
            "e-mailed to var/mail/) / 従業員以外は初回ログイン時に多要素認証を設定します"
            "（認証アプリ、または var/mail/ に届く確認コード）。"
        )
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS("Self-registration samples / アカウント登録の試し方 (/accounts/register/):")
        )
        for sample in demo_registration_samples():
            page = "/accounts/register/" if sample.kind == "card" else "/accounts/register/employee/"
            self.stdout.write(f"  {sample.tenant} — {page}")
            for label, value in sample.fields.items():
                self.stdout.write(f"    {label}: {value}")
        self.stdout.write("  The confirmation e-mail is written to var/mail/ / 確認メールは var/mail/ に保存されます。")
