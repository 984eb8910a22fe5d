"""Password rules (MISSION A4): 8+ characters for employees, 12+ for everyone privileged
(accounts.policy.privileged: every other role, and any login holding a label over others' data),
at least 3 of the 4 character classes for everyone."""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

EMPLOYEE_MIN_LENGTH = 8
PRIVILEGED_MIN_LENGTH = 12


def needs_privileged_length(user) -> bool:
    """accounts.policy.privileged, asked in the login's own tenant: a password is also set outside any
    tenant context (the reset link, operator commands). An unsaved login or one without a tenant holds
    no label: only its role counts."""
    if user is None:
        return False
    if getattr(user, "role", "employee") != "employee":
        return True
    if getattr(user, "pk", None) is None or getattr(user, "tenant_id", None) is None:
        return False
    # Imported here: the policy reads the models, which Django's password machinery must not need.
    from accounts import policy
    from tenants.context import current_tenant, tenant_context

    current = current_tenant()
    if current is not None and current.pk == user.tenant_id:
        return policy.privileged(user)
    with tenant_context(user.tenant):
        return policy.privileged(user)


class RoleLengthValidator:
    def validate(self, password: str, user=None) -> None:
        minimum = PRIVILEGED_MIN_LENGTH if needs_privileged_length(user) else EMPLOYEE_MIN_LENGTH
        if len(password) < minimum:
            raise ValidationError(
                _("パスワードは%(min)d文字以上にしてください。") % {"min": minimum},
                code="password_too_short",
            )

    def get_help_text(self) -> str:
        return _("従業員は8文字以上、管理者・医療職と、他の人のデータを扱う権限ラベルを持つ人は12文字以上。")


class CharacterClassValidator:
    def __init__(self, min_classes: int = 3) -> None:
        self.min_classes = min_classes

    def validate(self, password: str, user=None) -> None:
        classes = [
            any(c.isascii() and c.islower() for c in password),
            any(c.isascii() and c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(c in string.punctuation or not c.isalnum() for c in password),
        ]
        if sum(classes) < self.min_classes:
            raise ValidationError(
                _("英大文字・英小文字・数字・記号のうち%(n)d種類以上を含めてください。") % {"n": self.min_classes},
                code="password_too_simple",
            )

    def get_help_text(self) -> str:
        return _("英大文字・英小文字・数字・記号のうち3種類以上を含めてください。")
