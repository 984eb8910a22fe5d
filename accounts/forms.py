from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.labels import LABEL_CHOICES, Scope


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


class GrantForm(forms.Form):
    target_kind = forms.ChoiceField(
        label=_("付与対象"),
        choices=[("employee", _("社員番号")), ("department", _("部署名"))],
        widget=forms.RadioSelect,
        initial="employee",
    )
    target = forms.CharField(label=_("社員番号または部署名"), max_length=100)
    labels = forms.MultipleChoiceField(label=_("ラベル"), choices=LABEL_CHOICES, widget=forms.CheckboxSelectMultiple)
    scope = forms.ChoiceField(
        # No default: 本人のみ preselected made most labels do nothing unless the admin noticed.
        label=_("範囲"), choices=[("", "---------"), *Scope.CHOICES],
        help_text=_("権限の管理・監査ログ・名簿や健診結果の取り込み・チームの解散は、組織全体に及ぶため範囲「全体」のときだけ働きます。"),
    )  # fmt: skip
    valid_from = forms.DateField(label=_("有効開始日"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(label=_("有効終了日"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


class GrantEditForm(GrantForm):
    """Editing keeps the target: labels, scope and validity change."""

    target_kind = None
    target = None


# What a team shows of a person: the name they give for it (accounts.services._team_display_name).
_DISPLAY_NAME = {
    "label": _("チームでの表示名"),
    "max_length": 30,
    "help_text": _("チームのメンバーにはこの名前だけが表示されます（メールアドレスや氏名は表示されません）。"),
}


class TeamForm(forms.Form):
    name = forms.CharField(label=_("チーム名"), max_length=100)
    description = forms.CharField(
        label=_("説明"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    join_policy = forms.ChoiceField(
        label=_("参加方法"),
        choices=[("approval", _("承認制")), ("open", _("誰でも参加できる"))],
        initial="approval",
    )
    display_name = forms.CharField(**_DISPLAY_NAME)


class TeamJoinForm(forms.Form):
    display_name = forms.CharField(**_DISPLAY_NAME)
