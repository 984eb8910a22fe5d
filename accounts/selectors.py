from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts import policy
from accounts.labels import Perm
from accounts.models import LabelGrant, Member, Team, TeamMembership, User
from healthapp.crypto.blind_index import blind_index, normalise
from healthapp.crypto.fields import open_row
from tenants.context import require_tenant
from tenants.models import Department, Office, Tenant


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


# --- Scoped reads (every one asks accounts.policy) -----------------------------------------------


def members_visible_to(*, user: User, perm: str = Perm.MEMBER_VIEW) -> QuerySet[Member]:
    """Roster entries ``user`` may see under ``perm``: none without it."""
    return policy.scope(user, perm, Member.objects.select_related("office", "department").order_by("pk"))


def member_get_for_user(*, user: User, member_id: int, perm: str = Perm.MEMBER_VIEW) -> Member:
    """One roster entry inside the user's tenant and scope; anything else (missing, out of scope,
    another tenant's) is the same 404."""
    member = members_visible_to(user=user, perm=perm).filter(pk=member_id).first()
    if member is None:
        raise Http404
    return member


ROSTER_PAGE_SIZE = 100
# A search by part of a name opens the names of everyone in scope (no index can find a part of a sealed
# value without giving the part away): bounded so it answers in about a second on a 2-core machine.
PARTIAL_SEARCH_LIMIT = 50_000
_SEARCHED_FIELDS = ("name", "kana_name", "employee_number")


@dataclass(frozen=True)
class RosterSearch:
    page: Page
    partial: bool = False  # found by part of a name, フリガナ or number (nothing matched exactly)
    too_many: bool = False  # nothing matched exactly, and the scope is too large to search by a part


PARTIAL_HITS_SECONDS = 300  # how long a search's matches (ids only) serve its further pages


def members_search(*, user: User, query: str, page: int | str | None = 1, search_id: str = "") -> RosterSearch:
    """One page of the roster inside the user's scope, or of the people a query finds: the exact matches of an
    employee number or full name (blind indexes) when there are any, else those whose name, フリガナ or employee
    number contains it (全角/半角, spaces, katakana/hiragana and case folded as for the exact match). With a
    ``search_id`` (the page's random search token) the matches' ids are kept a few minutes for the next pages,
    which then open nothing; each page still reads only what the scope lets through."""
    found = members_visible_to(user=user)
    if not (query := query.strip()):
        return RosterSearch(Paginator(found, ROSTER_PAGE_SIZE).get_page(page))
    tenant = require_tenant()
    by_number = blind_index(tenant.pk, "employee-number", query)
    by_name = blind_index(tenant.pk, "name", query, kana=True)
    exact = found.filter(Q(employee_number_index=by_number) | Q(name_index=by_name))
    if exact.exists():
        return RosterSearch(Paginator(exact, ROSTER_PAGE_SIZE).get_page(page))
    key = f"roster-search:{tenant.pk}:{user.pk}:{search_id}" if search_id else ""
    hits = cache.get(key) if key else None
    if hits is None:
        hits = _containing(found, normalise(query, kana=True), tenant.pk)
        if key and hits is not None:
            cache.set(key, hits, PARTIAL_HITS_SECONDS)
    if hits is None:
        return RosterSearch(Paginator(exact, ROSTER_PAGE_SIZE).get_page(page), too_many=True)
    result = Paginator(hits, ROSTER_PAGE_SIZE).get_page(page)
    loaded = found.in_bulk(list(result.object_list))
    result.object_list = [loaded[pk] for pk in result.object_list if pk in loaded]
    return RosterSearch(result, partial=True)


def _containing(found: QuerySet[Member], wanted: str, tenant_id: int) -> list[int] | None:
    """The ids, in roster order, of the entries whose name, フリガナ or number contains ``wanted`` (normalised);
    None when the scope holds more than PARTIAL_SEARCH_LIMIT entries."""
    rows = list(found.order_by("pk").values_list("pk", "uid", *_SEARCHED_FIELDS)[: PARTIAL_SEARCH_LIMIT + 1])
    if len(rows) > PARTIAL_SEARCH_LIMIT:
        return None
    fields = [Member._meta.get_field(name) for name in _SEARCHED_FIELDS]
    hits = []
    for pk, uid, *values in rows:
        sealed = [(f, value) for f, value in zip(fields, values, strict=True) if isinstance(value, bytes)]
        if any(wanted in normalise(text, kana=True) for text in open_row(tenant_id, uid.bytes, sealed)):
            hits.append(pk)
    return hits


def offices_for_access_settings(*, user: User) -> QuerySet[Office]:
    """Every office's grants are for those managing access over the whole tenant: a grant may reach anyone
    (scope tenant), so managing them from one department would be managing the tenant."""
    if not policy.can_tenant_wide(user, Perm.ACCESS_MANAGE):
        raise Http404
    return Office.objects.annotate(grant_count=Count("label_grants")).order_by("name")


def grants_for_office(*, user: User, office_id: int) -> tuple[Office, list[LabelGrant]]:
    office = offices_for_access_settings(user=user).filter(pk=office_id).first()
    if office is None:
        raise Http404
    grants = list(LabelGrant.objects.filter(office=office).select_related("member", "department").order_by("pk"))
    # The person's name beside their employee number, where the viewer may see that roster entry anyway.
    people = [g.member_id for g in grants if g.member_id]
    visible = set(
        policy.scope(user, Perm.MEMBER_VIEW, Member.objects.filter(pk__in=people)).values_list("pk", flat=True)
    )
    for grant in grants:
        grant.member_name = grant.member.name if grant.member_id in visible else ""
    return office, grants


def grant_get_for_user(*, user: User, grant_id: int) -> LabelGrant:
    if not policy.can_tenant_wide(user, Perm.ACCESS_MANAGE):
        raise Http404
    grant = LabelGrant.objects.select_related("office", "member", "department").filter(pk=grant_id).first()
    if grant is None:
        raise Http404
    return grant


def teams_for_user(*, user: User) -> list[tuple[Team, TeamMembership | None]]:
    """Live teams with the user's own membership (None if not a member), the user's teams first."""
    mine = {
        m.team_id: m
        for m in TeamMembership.objects.filter(
            user=user, status__in=[TeamMembership.Status.PENDING, TeamMembership.Status.MEMBER]
        )
    }
    teams = Team.objects.filter(dissolved_at__isnull=True).annotate(
        member_count=Count("memberships", filter=Q(memberships__status=TeamMembership.Status.MEMBER))
    )
    return sorted(((t, mine.get(t.pk)) for t in teams), key=lambda pair: (pair[1] is None, pair[0].name))


def team_get(*, team_id: int) -> Team:
    team = Team.objects.filter(pk=team_id, dissolved_at__isnull=True).first()
    if team is None:
        raise Http404
    return team


def team_memberships(*, team: Team) -> list[TeamMembership]:
    return list(
        TeamMembership.objects.filter(
            team=team, status__in=[TeamMembership.Status.PENDING, TeamMembership.Status.MEMBER]
        )
        .select_related("user")
        .order_by("status", "requested_at")
    )


@dataclass(frozen=True)
class AccessReviewRow:
    user_id: int | None  # None: a grant to an employee number that has no login yet
    email: str
    role: str
    role_display: str
    labels: list[str]
    scopes: list[str]
    sources: list[str]
    last_login: dt.datetime | None
    mfa: bool
    flags: list[str]

    @property
    def grants(self) -> list[tuple[str, str, str]]:
        return list(zip(self.labels, self.scopes, self.sources, strict=True))


def access_review(*, today: dt.date | None = None) -> list[AccessReviewRow]:
    """Who holds what in the current tenant, with the findings a quarterly review looks for."""
    from django_otp import device_classes

    tenant = require_tenant()
    today = today or timezone.localdate()
    rows = []
    members = {m.user_id: m for m in Member.objects.filter(user__isnull=False)}
    departments = {d.pk: d.name for d in Department.objects.all()}
    users = list(User.objects.filter(tenant=tenant).order_by("email"))
    # A fixed number of queries whatever the number of logins (an insurer may have 100,000).
    grants_of = policy.effective_grants_of_all(users, members, on=today)
    with_mfa = set()
    for device in device_classes():
        with_mfa.update(device.objects.filter(user__tenant=tenant, confirmed=True).values_list("user_id", flat=True))
    for user in users:
        grants = grants_of[user.pk]
        member = members.get(user.pk)
        has_mfa = user.pk in with_mfa
        flags = []
        if (user.is_privileged or policy.rights_over_others(grants)) and not has_mfa:
            flags.append("privileged_without_mfa")
        if user.last_login is None:
            flags.append("never_logged_in")
        elif user.last_login < timezone.now() - dt.timedelta(days=90):
            flags.append("inactive_90_days")
        if any(g.valid_until and g.valid_until <= today + dt.timedelta(days=30) for g in grants):
            flags.append("grant_expiring_30_days")
        if member is not None and member.qualification_end and member.qualification_end <= today:
            flags.append("qualification_ended")
        rows.append(
            AccessReviewRow(
                user_id=user.pk,
                email=user.email,
                role=user.role,
                role_display=str(user.get_role_display()),
                labels=[g.label for g in grants],
                scopes=[g.scope for g in grants],
                sources=[_source(g, member, departments) for g in grants],
                last_login=user.last_login,
                mfa=has_mfa,
                flags=flags,
            )
        )
    return rows + _grants_without_login(today)


def _grants_without_login(today: dt.date) -> list[AccessReviewRow]:
    """Grants to employee numbers nobody has logged in with yet: they take effect the day that person
    registers, so a review lists them too (one row per grant still valid or to come)."""
    grants = (
        LabelGrant.objects.filter(target_kind=LabelGrant.Target.EMPLOYEE, member__user__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("member")
    )
    rows = []
    for grant in sorted(grants, key=lambda g: (g.member.employee_number or "", g.pk)):
        flags = ["no_login"]
        if grant.valid_until and grant.valid_until <= today + dt.timedelta(days=30):
            flags.append("grant_expiring_30_days")
        if grant.member.qualification_end and grant.member.qualification_end <= today:
            flags.append("qualification_ended")
        rows.append(
            AccessReviewRow(
                user_id=None, email="", role="", role_display="", labels=list(grant.labels),
                scopes=[grant.scope] * len(grant.labels),
                sources=[f"employee:{grant.member.employee_number}"] * len(grant.labels),
                last_login=None, mfa=False, flags=flags,
            )
        )  # fmt: skip
    return rows


def _source(grant: policy.EffectiveGrant, member: Member | None, departments: dict[int, str]) -> str:
    """Where a label comes from, as the admin entered it: the role, a department or an employee number."""
    if grant.source == "role":
        return "role"
    if grant.source == "department":
        return f"department:{departments.get(grant.department_id, grant.department_id)}"
    return f"employee:{member.employee_number if member else '?'}"


ACCESS_REVIEW_HEADER = ["user_id", "email", "role", "labels", "scopes", "sources", "last_login", "mfa", "flags"]


def access_review_table(rows: list[AccessReviewRow]) -> list[list[object]]:
    """The review as flat rows (for CSV and the command), in ACCESS_REVIEW_HEADER order."""
    return [
        [
            r.user_id, r.email, r.role, " ".join(r.labels), " ".join(r.scopes), " ".join(r.sources),
            timezone.localtime(r.last_login).isoformat() if r.last_login else "",  # JST, as the page shows it
            ("yes" if r.mfa else "no") if r.user_id else "", " ".join(r.flags),
        ]
        for r in rows
    ]  # fmt: skip


def identity_visible(user) -> bool:
    """生年月日 and 性別 on a person's page: for those who keep the roster across the tenant (they upload these
    values and check what was stored), not for every roster viewer, since with a card or an employee number
    they are what self-registration asks."""
    return policy.can_tenant_wide(user, Perm.ROSTER_MANAGE)


def card_visible(user) -> bool:
    """An insurer's people are known by their insurance card: its fields join the roster pages there, for
    those who keep the roster (roster.manage). Not for every roster viewer: 記号・番号・枝番・続柄 are most
    of what self-registration asks, and the law restricts who may ask for them (健康保険法 告知要求制限)."""
    return require_tenant().kind == Tenant.Kind.INSURER and policy.can_tenant_wide(user, Perm.ROSTER_MANAGE)
