from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Member, User
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


def member_for_user(*, user: User) -> Member | None:
    """The roster entry linked to ``user`` inside the current tenant, if any."""
    if user.tenant_id is None:
        return None
    return Member.objects.select_related("office", "department").filter(user=user).first()
