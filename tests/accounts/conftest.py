"""Fixtures of the roster-import tests (none is autouse)."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PASSWORD


def make_hr_admin(world, *, email: str = "hr@a.example"):
    """An hr_admin of tenant A holding roster.manage through an hr_staff grant (as the demo does it)."""
    from accounts.models import Role
    from accounts.services import label_grant_create, member_create, user_create
    from tenants.context import tenant_context

    with tenant_context(world.tenant_a):
        member = member_create(employee_number="HR1", name="人事 太郎", office=world.office_a)
    user = user_create(email=email, role=Role.HR_ADMIN, tenant=world.tenant_a, password=TEST_PASSWORD + "!x",
                       member=member)  # fmt: skip
    with tenant_context(world.tenant_a):
        label_grant_create(
            office=world.office_a, target_kind="employee", target="HR1", labels=["hr_staff"], scope_="tenant",
            acting_user=world.admin_a,
        )  # fmt: skip
    return user


@pytest.fixture
def hr_admin(world):
    return make_hr_admin(world)


DOCTOR_PASSWORD = TEST_PASSWORD + "!x"


@pytest.fixture
def physician(world):
    """A physician login of tenant A (a privileged role: MFA is mandatory), not yet enrolled."""
    from accounts.models import Role
    from accounts.services import user_create

    return user_create(email="doctor@a.example", role=Role.PHYSICIAN, tenant=world.tenant_a, password=DOCTOR_PASSWORD)


@pytest.fixture
def fresh_cache():
    """An empty cache: django-otp's throttling, the rate limits and the MFA middleware's memo start afresh."""
    from django.core.cache import cache

    cache.clear()
