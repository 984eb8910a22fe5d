from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Member, User
from healthapp.crypto.blind_index import blind_index
from tenants.context import require_tenant
from tenants.models import Department, Office


@dataclass(frozen=True)
class RosterSummary:
    offices: int
    departments: int
    members: int
    active_members: int
    linked_accounts: int


def roster_summary() -> RosterSummary:
    """Counts for the current tenant (raises without one)."""
    members = Member.objects.all()
    return RosterSummary(
        offices=Office.objects.count(),
        departments=Department.objects.count(),
        members=members.count(),
        active_members=members.filter(is_active=True).count(),
        linked_accounts=members.filter(user__isnull=False).count(),
    )


def member_get_by_employee_number(employee_number: str) -> Member | None:
    """The current tenant's roster entry with this employee number (found by its blind index)."""
    tenant = require_tenant()
    return Member.objects.filter(
        employee_number_index=blind_index(tenant.pk, "employee-number", employee_number)
    ).first()


def members_find_by_name(name: str) -> list[Member]:
    """Exact-name search (全角/半角, spaces, katakana/hiragana folded) inside the current tenant."""
    tenant = require_tenant()
    return list(Member.objects.filter(name_index=blind_index(tenant.pk, "name", name, kana=True)).order_by("pk"))


def member_for_user(*, user: User) -> Member | None:
    """The roster entry linked to ``user`` inside the current tenant, if any."""
    if user.tenant_id is None:
        return None
    return Member.objects.select_related("office", "department").filter(user=user).first()
