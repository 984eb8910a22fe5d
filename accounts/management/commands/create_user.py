import getpass
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import Role, User
from accounts.selectors import member_get_by_employee_number
from accounts.services import password_generate, user_create
from tenants.management.base import TenantCommand


class Command(TenantCommand):
    help = (
        "Create a login. ログインアカウントを作成します。 The password is prompted for on a terminal, "
        "otherwise (or with --generate-password) generated and shown once."
    )
    tenant_required = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--employee-number", help="Link the login to this roster entry / 社員番号")
        parser.add_argument("--generate-password", action="store_true")

    def handle_tenant(self, tenant, *args, **options):
        role = options["role"]
        if (role == Role.OPERATOR) != (tenant is None):
            raise CommandError(
                "運用担当者は --tenant なし、それ以外のロールは --tenant が必要です / "
                "operators take no --tenant; every other role needs one"
            )
        email = options["email"].strip().lower()
        if User.objects.filter(email=email).exists():
            raise CommandError("このメールアドレスは登録済みです / This e-mail address is already registered")
        member = None
        if options.get("employee_number"):
            member = member_get_by_employee_number(options["employee_number"])
            if member is None:
                raise CommandError("社員番号が名簿にありません / No roster entry with that employee number")
        generated = options["generate_password"] or not sys.stdin.isatty()
        password = password_generate() if generated else self._prompt_password()
        try:
            user = user_create(email=email, role=role, tenant=tenant, password=password, member=member)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created user #{user.pk} ({role})"))
        if generated:
            self.stdout.write(f"Password (shown once / 一度だけ表示): {password}")

    def _prompt_password(self) -> str:
        first = getpass.getpass("Password / パスワード: ")
        if first != getpass.getpass("Password (again) / パスワード（確認）: "):
            raise CommandError("パスワードが一致しません / Passwords do not match")
        return first
