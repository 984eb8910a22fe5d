import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from accounts.models import Role, User


def _user(role: str) -> User:
    return User(email="someone@a.example", role=role)


@pytest.mark.parametrize(
    ("role", "password", "ok"),
    [
        (Role.EMPLOYEE, "Kenko2026", True),  # 8+, three classes
        (Role.EMPLOYEE, "Kenk2026", True),
        (Role.EMPLOYEE, "Ke2026x", False),  # 7 characters
        (Role.EMPLOYEE, "kenkokanri", False),  # one class
        (Role.EMPLOYEE, "kenko2026", False),  # two classes
        (Role.PHYSICIAN, "Kenko2026", False),  # privileged: 12+
        (Role.ORG_ADMIN, "Kenko2026Kanri", True),
        (Role.ORG_ADMIN, "Kenko2026Kan", True),  # exactly 12
        (Role.HR_ADMIN, "Kenko2026Ka", False),  # 11
        (Role.EMPLOYEE, "Password1", False),  # common password
    ],
)
def test_password_policy_by_role(role, password, ok):
    if ok:
        validate_password(password, _user(role))
    else:
        with pytest.raises(ValidationError):
            validate_password(password, _user(role))


def test_policy_messages_are_japanese_first():
    with pytest.raises(ValidationError) as exc:
        validate_password("abc", _user(Role.EMPLOYEE))
    assert "パスワードは8文字以上にしてください。" in exc.value.messages


def test_argon2id_is_the_first_hasher_in_the_real_settings():
    # Tests swap in a fast hasher; the settings module itself must put Argon2 first.
    from healthapp import settings as real

    assert real.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_argon2_hash_is_argon2id(settings, db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    user = User(email="x@a.example")
    user.set_password("Kenko2026Kanri")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("Kenko2026Kanri")
