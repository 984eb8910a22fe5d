"""The one access policy: ``can(user, perm, obj)`` and ``scope(user, perm, queryset)``.

Deny by default. A user holds a permission only through a permission label: the built-in label of the
org_admin role, or a LabelGrant to their employee number or to their department, valid today. Grants
add up (the widest scope wins). Scopes are anchored as follows:

- ``self``: the roster entries linked to the user;
- ``department``: the grant's department (department grants) or the user's own department (employee
  grants), read at evaluation time, so moves on the roster move rights with them;
- ``office``: the office the grant was entered under;
- ``tenant``: the whole tenant.

Operators hold no tenant permission. Every selector, view and API asks this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.labels import LABELS, ROLE_LABELS, Scope
from accounts.models import LabelGrant, Member


@dataclass(frozen=True)
class EffectiveGrant:
    label: str
    permissions: frozenset[str]
    scope: str
    office_id: int | None
    department_id: int | None
    source: str  # "role", "employee" or "department"
    grant_id: int | None = None
    valid_until: dt.date | None = None


def effective_grants(user, *, on: dt.date | None = None) -> list[EffectiveGrant]:
    """Every label the user holds today, with its scope anchor and where it comes from."""
    if not _may_hold_grants(user):
        return []
    day = on or timezone.localdate()
    cache = getattr(user, "_effective_grants", None)
    if cache is not None and cache[0] == day:
        return cache[1]
    member = Member.objects.filter(user=user).only("pk", "tenant", "department", "office", "is_active").first()
    grants: list[LabelGrant] = []
    if member is not None and member.is_active:
        targets = Q(member=member)
        if member.department_id:
            targets |= Q(department_id=member.department_id)
        grants = list(LabelGrant.objects.filter(targets).order_by("pk"))
    result = _effective(user, member, grants, day)
    user._effective_grants = (day, result)
    return result


def effective_grants_of_all(
    users: list, members: dict[int, Member], *, on: dt.date | None = None
) -> dict[int, list[EffectiveGrant]]:
    """``effective_grants`` for many users of the current tenant at once (the access review), given the
    roster entries linked to logins (by user id, as the caller has read them): every grant is read once,
    not per user."""
    day = on or timezone.localdate()
    by_member: dict[int, list[LabelGrant]] = {}
    by_department: dict[int, list[LabelGrant]] = {}
    for grant in LabelGrant.objects.order_by("pk"):
        if grant.member_id:
            by_member.setdefault(grant.member_id, []).append(grant)
        if grant.department_id:
            by_department.setdefault(grant.department_id, []).append(grant)
    result = {}
    for user in users:
        if not _may_hold_grants(user):
            result[user.pk] = []
            continue
        member = members.get(user.pk)
        grants: list[LabelGrant] = []
        if member is not None and member.is_active:
            # A grant targets either an employee or a department (labelgrant_one_target): no duplicates.
            grants = by_member.get(member.pk, []) + by_department.get(member.department_id, [])
            grants.sort(key=lambda g: g.pk)
        result[user.pk] = _effective(user, member, grants, day)
    return result


def privileged(user) -> bool:
    """Bound to a second factor and the tenant's IP allowlist: every role but employee, and anyone holding
    a label over other people's data, whatever their role (an employee login given 産業医 by a grant reads
    lab values and signs 就業判定 like any physician)."""
    return bool(user.is_privileged or rights_over_others(effective_grants(user)))


def rights_over_others(grants: list[EffectiveGrant]) -> bool:
    return any(g.scope != Scope.SELF for g in grants)


def _may_hold_grants(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.tenant_id is not None and user.is_active)


def _effective(user, member: Member | None, grants: list[LabelGrant], day: dt.date) -> list[EffectiveGrant]:
    """The role's built-in label, then the grants (to the member or their department, by pk) valid on ``day``."""
    result: list[EffectiveGrant] = []
    if user.role in ROLE_LABELS:
        code, scope_ = ROLE_LABELS[user.role]
        result.append(EffectiveGrant(code, LABELS[code].permissions, scope_, None, None, "role"))
    for grant in grants:  # only an active roster entry's (the callers pass none otherwise)
        if not grant.is_valid_on(day):
            continue
        anchor_department = grant.department_id if grant.department_id else member.department_id
        for code in grant.labels:
            if code in LABELS:
                result.append(
                    EffectiveGrant(
                        code, LABELS[code].permissions, grant.scope, grant.office_id, anchor_department,
                        grant.target_kind, grant.pk, grant.valid_until,
                    )
                )  # fmt: skip
    return result


def permissions(user) -> set[str]:
    return {perm for grant in effective_grants(user) for perm in grant.permissions}


def can_tenant_wide(user, perm: str) -> bool:
    """True if ``user`` holds ``perm`` over the whole tenant: what the importers need, since a file names
    anyone in the tenant and a full import deactivates everyone it leaves out (a department's HR may not)."""
    return perm in tenant_wide_permissions(user)


def role_permissions(user) -> set[str]:
    """What the login's role gives for good, over the whole tenant (the org admin's built-in label)."""
    if user.role not in ROLE_LABELS:
        return set()
    code, scope_ = ROLE_LABELS[user.role]
    return set(LABELS[code].permissions) if scope_ == Scope.TENANT else set()


def tenant_wide_permissions(user) -> set[str]:
    return {perm for grant in effective_grants(user) if grant.scope == Scope.TENANT for perm in grant.permissions}


def can(user, perm: str, obj: Member | None = None) -> bool:
    """True if ``user`` holds ``perm`` (for ``obj``, if given: the roster entry must be in scope)."""
    if obj is None:
        return perm in permissions(user)
    if obj.tenant_id != user.tenant_id:
        return False
    return scope(user, perm, Member.objects.filter(pk=obj.pk)).exists()


def scope(user, perm: str, queryset: QuerySet, *, member_path: str = "") -> QuerySet:
    """Narrow ``queryset`` to what ``user`` may see under ``perm``; nothing at all without the permission.

    ``member_path`` names the roster entry from the queryset's model ("" for Member itself,
    e.g. "member__" for a model with a ``member`` foreign key).
    """
    condition = Q(pk__in=[])
    for grant in effective_grants(user):
        if perm not in grant.permissions:
            continue
        if grant.scope == Scope.TENANT:
            return queryset
        if grant.scope == Scope.OFFICE and grant.office_id:
            condition |= Q(**{f"{member_path}office_id": grant.office_id})
        elif grant.scope == Scope.DEPARTMENT and grant.department_id:
            condition |= Q(**{f"{member_path}department_id": grant.department_id})
        elif grant.scope == Scope.SELF:
            condition |= Q(**{f"{member_path}user_id": user.pk})
    return queryset.filter(condition)


def forget(user) -> None:
    """Drop the per-request cache after the user's grants changed."""
    if hasattr(user, "_effective_grants"):
        del user._effective_grants
