"""Forms of the registration, password reset, MFA and allowlist pages. They check shape only; the
rules (who may register, what a code is worth) live in accounts.registration, accounts.mfa and
tenants.allowlist."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import Member, Role, User
from accounts.registration import EmployeeProof, InsuranceCard
from accounts.roster_import import insurance_branch
from tenants.models import TenantSecurityPolicy


def single_line(value: str) -> None:
    """No line breaks or other control characters: such values could end up in a mail header."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError(_("改行などの制御文字は使えません。"), code="control_character")


def _text(label, max_length: int = 50, **kwargs) -> forms.CharField:
    return forms.CharField(label=label, max_length=max_length, validators=[single_line], **kwargs)


class _AccountFieldsMixin(forms.Form):
    email = forms.EmailField(
        label=_("ログインに使うメールアドレス"),
        max_length=254,
        validators=[single_line],
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("パスワード"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("8文字以上、英大文字・英小文字・数字・記号のうち3種類以上。"),
    )
    password_confirm = forms.CharField(
        label=_("パスワード（確認）"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        password, again = cleaned.get("password"), cleaned.get("password_confirm")
        if password:  # everything wrong with it at once, not the policy only after the two agree
            try:
                # Self-registered accounts are always employees: their policy applies.
                validate_password(password, User(email=cleaned.get("email", ""), role=Role.EMPLOYEE))
            except ValidationError as error:
                self.add_error("password", error)
        if password and again and password != again:
            self.add_error("password_confirm", _("パスワードが一致しません。"))
        return cleaned


def _year_choices() -> list[tuple[str, str]]:
    this_year = timezone.localdate().year
    return [("", "---")] + [(str(y), str(y)) for y in range(this_year, this_year - 111, -1)]


class CardRegistrationForm(_AccountFieldsMixin):
    insurance_symbol = _text(_("記号"), widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}))
    insurance_number = _text(_("番号"), widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}))
    insurance_branch = _text(
        _("枝番"),
        max_length=2,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "size": 3}),
        help_text=_("番号の右の2桁（例: 01）。保険証に書かれていれば入力してください。"),
    )
    # No answer chosen for the person: 本人 / 男性 preselected were sent unread (and spent an attempt).
    relationship = forms.ChoiceField(label=_("続柄"), choices=[("", "---"), *Member.Relationship.choices])
    sex = forms.ChoiceField(label=_("性別"), choices=[("", "---"), *Member.Sex.choices])
    birth_year = forms.TypedChoiceField(label=_("生まれた年"), choices=_year_choices, coerce=int)
    birth_month = forms.TypedChoiceField(
        label=_("生まれた月"), choices=[("", "---")] + [(str(m), str(m)) for m in range(1, 13)], coerce=int
    )

    field_order = [
        "insurance_symbol",
        "insurance_number",
        "insurance_branch",
        "relationship",
        "sex",
        "birth_year",
        "birth_month",
        "email",
        "password",
        "password_confirm",
    ]

    def clean_insurance_branch(self) -> str:
        try:
            return insurance_branch(self.cleaned_data["insurance_branch"])
        except ValueError:
            raise ValidationError(_("枝番は2桁までの数字で入力してください（例: 00、01）。")) from None

    def card(self) -> InsuranceCard:
        data = self.cleaned_data
        return InsuranceCard(
            symbol=data["insurance_symbol"],
            number=data["insurance_number"],
            branch=data["insurance_branch"],
            relationship=data["relationship"],
            sex=data["sex"],
            birth_year_month=f"{data['birth_year']:04d}-{data['birth_month']:02d}",
        )


class EmployeeRegistrationForm(_AccountFieldsMixin):
    employee_number = _text(_("社員番号"), widget=forms.TextInput(attrs={"autocomplete": "off"}))
    birth_date = forms.DateField(
        label=_("生年月日"), widget=forms.DateInput(attrs={"type": "date"}), help_text=_("例: 1985-04-01")
    )
    attribute_value = _text(
        _("会社が指定した確認項目"),
        max_length=100,
        help_text=_(
            "会社からの案内に書かれた項目（フリガナ・電話番号・保険証の番号のいずれか）を名簿に登録されたとおりに入力してください。"
        ),
    )

    field_order = ["employee_number", "birth_date", "attribute_value", "email", "password", "password_confirm"]

    def clean_birth_date(self) -> dt.date:
        value = self.cleaned_data["birth_date"]
        if value > timezone.localdate():
            raise ValidationError(_("生年月日が未来の日付になっています。"))
        return value

    def proof(self) -> EmployeeProof:
        data = self.cleaned_data
        return EmployeeProof(
            employee_number=data["employee_number"],
            birth_date=data["birth_date"],
            attribute_value=data["attribute_value"],
        )


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("登録したメールアドレス"),
        max_length=254,
        validators=[single_line],
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


NEW_PASSWORD_FIELD = "new_password1"  # noqa: S105  (a field name)


class PolicyErrorsOnNewPassword:
    """Django puts the policy's errors under the confirmation field; they are about the password typed first."""

    def validate_password_for_user(self, user, password_field_name: str = "") -> None:
        super().validate_password_for_user(user, NEW_PASSWORD_FIELD)


class ResetSetPasswordForm(PolicyErrorsOnNewPassword, SetPasswordForm):
    """Django's form; its validation runs the role's password policy for this user."""


class ChangePasswordForm(PolicyErrorsOnNewPassword, PasswordChangeForm):
    """Django's form; the current password is checked as a login is (a wrong one counts toward the lockout)."""

    def __init__(self, user, *args, request=None, **kwargs) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        if not services.password_reconfirmed(request=self.request, user=self.user, password=old_password):
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("確認コード"),
        max_length=20,
        validators=[single_line],
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class PasswordConfirmForm(forms.Form):
    """The password typed again before a sensitive change (accounts.mfa checks it)."""

    password = forms.CharField(
        label=_("現在のパスワード"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class ReconfirmedPasswordForm(PasswordConfirmForm):
    """The password typed again, checked by the form itself as a login is (``services.password_reconfirmed``:
    a wrong one counts toward the lockout), for pages whose service does not check it."""

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not services.password_reconfirmed(request=self.request, user=self.request.user, password=password):
            raise ValidationError(_("パスワードが正しくありません。"), code="password_incorrect")
        return password


class AllowlistForm(forms.Form):
    networks = forms.CharField(
        label=_("許可するネットワーク（1行に1つ、CIDR形式）"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("例: 203.0.113.0/24、2001:db8::/32。空にすると制限なしになります。"),
    )
    # The list the "your own address is not in it" warning was about (a digest): saying yes once does not
    # confirm a different list typed after it.
    confirm_exclude_self = forms.CharField(required=False, widget=forms.HiddenInput)


class SecurityPolicyForm(forms.ModelForm):
    class Meta:
        model = TenantSecurityPolicy
        fields = ["mfa_required_for_all", "registration_attribute"]
