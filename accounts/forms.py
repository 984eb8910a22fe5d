from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("メールアドレス"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        "invalid_login": _(
            "メールアドレスまたはパスワードが正しくありません。5回続けて間違えると、しばらくログインできなくなります。"
        ),
        "inactive": _("このアカウントは利用できません。管理者にお問い合わせください。"),
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()
