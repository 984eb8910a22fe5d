"""Password rules (MISSION A4): 8+ characters for employees, 12+ for every other role,
at least 3 of the 4 character classes for everyone."""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

EMPLOYEE_MIN_LENGTH = 8
PRIVILEGED_MIN_LENGTH = 12


def _is_privileged(user) -> bool:
    return bool(user is not None and getattr(user, "role", "employee") != "employee")


class RoleLengthValidator:
    def validate(self, password: str, user=None) -> None:
        minimum = PRIVILEGED_MIN_LENGTH if _is_privileged(user) else EMPLOYEE_MIN_LENGTH
        if len(password) < minimum:
            raise ValidationError(
                _("パスワードは%(min)d文字以上にしてください。") % {"min": minimum},
                code="password_too_short",
            )

    def get_help_text(self) -> str:
        return _("従業員は8文字以上、管理者・医療職は12文字以上。")


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
