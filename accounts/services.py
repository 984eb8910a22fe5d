from __future__ import annotations

import secrets
import string

from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from accounts.models import Member, Role, User
from tenants.context import tenant_context
from tenants.models import Tenant


def password_generate(length: int = 16) -> str:
    """A random password that satisfies every role's policy (all four classes)."""
    alphabet = string.ascii_letters + string.digits + "!#$%&*+-=?@_"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


@transaction.atomic
def user_create(*, email: str, role: str, tenant: Tenant | None, password: str, member: Member | None = None) -> User:
    """Create a login. Operators have no tenant; everyone else belongs to exactly one.

    The password is checked against the role's policy before anything is stored.
    """
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    candidate = User(email=email.strip().lower(), role=role, tenant=tenant)
    validate_password(password, candidate)
    if role == Role.OPERATOR:
        user = User.objects.create_superuser(candidate.email, password)
    else:
        user = User.objects.create_user(candidate.email, password, role=role, tenant=tenant)
    if member is not None:
        with tenant_context(tenant):
            member.user = user
            member.save(update_fields=["user", "updated_at"])
    return user


def member_create(**fields) -> Member:
    """Add a person to the current tenant's roster."""
    member = Member(**fields)
    member.full_clean(exclude=["tenant", "user"])
    member.save()
    return member
