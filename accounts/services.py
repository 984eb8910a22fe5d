from __future__ import annotations

import secrets
import string
import unicodedata

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

import audit
from accounts.labels import LABELS, Perm, Scope, working_permissions
from accounts.models import LabelGrant, Member, Role, Team, TeamMembership, User
from accounts.policy import can_tenant_wide as policy_can_tenant_wide
from accounts.policy import role_permissions as policy_role_permissions
from accounts.selectors import member_get_by_employee_number
from healthapp.errors import AppError
from tenants.context import tenant_context
from tenants.models import Department, Office, Tenant


def password_reconfirmed(*, request: HttpRequest, user: User, password: str) -> bool:
    """The signed-in user's password typed again before a sensitive change (a new password, removing or
    adding a factor, new backup codes), checked as a login is: a wrong one counts toward the account's
    lockout (django-axes) and is audited as a failed login, and while the account is locked even the right
    one is refused. Checked with ``check_password`` alone, a hijacked session could guess without limit."""
    found = authenticate(request, username=user.email, password=password)
    return found is not None and found.pk == user.pk


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


# What an operator may change of a login in the ops admin, and what each change says in the audit log:
# role and flags by value; the e-mail address only as changed or not (no personal data in an event).
OPERATOR_AUDITED = ("role", "is_active", "is_staff", "is_superuser")


@transaction.atomic
def user_save_by_operator(*, user: User, acting_user: User) -> User:
    """Save an operator's change to a login (the ops admin), recorded in the login's tenant chain: a
    role given to a tenant login (say 組織管理者) opens that tenant's data, so it must leave a trace."""
    before = User.objects.get(pk=user.pk)
    changed: dict[str, object] = {
        name: [getattr(before, name), getattr(user, name)]
        for name in OPERATOR_AUDITED
        if getattr(before, name) != getattr(user, name)
    }
    if before.is_active != user.is_active:
        user.disabled_by_roster = False  # the operator's decision now, which the roster never undoes
    user.save()
    if changed or before.email != user.email:
        details = {"changed": changed, "login_address_changed": before.email != user.email}
        audit.record(action="user.changed", tenant=user.tenant, target_type="user", target_id=user.pk,
                     actor=acting_user, details=details)  # fmt: skip
    return user


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


# --- Permission labels ---------------------------------------------------------------------------


def _grant_snapshot(grant: LabelGrant) -> dict:
    """A grant as an audit event sees it: ids and codes only, no personal data."""
    return {
        "office": grant.office_id,
        "target_kind": grant.target_kind,
        "member": grant.member_id,
        "department": grant.department_id,
        "labels": sorted(grant.labels),
        "scope": grant.scope,
        "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
    }


def _resolve_target(*, office: Office, target_kind: str, target: str) -> tuple[Member | None, Department | None]:
    target = (target or "").strip()
    if target_kind == LabelGrant.Target.EMPLOYEE:
        member = member_get_by_employee_number(target) if target else None
        if member is None:
            raise AppError("unknown_employee", _("この社員番号は名簿にありません。"))
        return member, None
    if target_kind == LabelGrant.Target.DEPARTMENT:
        department = Department.objects.filter(office=office, name=target).first()
        if department is None:
            raise AppError("unknown_department", _("この事業所にその部署はありません。"))
        return None, department
    raise AppError("invalid_target", _("付与対象を選んでください。"))


def _check_grant(
    *, labels: list[str], scope_: str, valid_from, valid_until, member, department, acting_user: User, widens=True
) -> None:
    _check_grant_manager(acting_user=acting_user, member=member, department=department, labels=labels, widens=widens)
    if not labels or any(code not in LABELS for code in labels):
        raise AppError("invalid_labels", _("付与するラベルを選んでください。"))
    if scope_ not in Scope.ORDER:
        raise AppError("invalid_scope", _("範囲を選んでください。"))

    def names(codes: list[str]) -> str:
        return pgettext("list separator", "、").join(str(LABELS[code].name) for code in codes)

    if unused := [code for code in labels if not working_permissions(code, Scope.TENANT)]:
        raise AppError("label_unused", _("「%(labels)s」で使える機能はまだありません。") % {"labels": names(unused)})
    if idle := [code for code in labels if not working_permissions(code, scope_)]:
        raise AppError(
            "label_idle_at_scope",
            _(
                "「%(labels)s」は組織全体に及ぶラベルのため、範囲「全体」のときだけ働きます。範囲を「全体」にするか、このラベルを外してください。"
            )
            % {"labels": names(idle)},
        )
    if valid_from and valid_until and valid_until < valid_from:
        raise AppError("invalid_period", _("有効終了日は開始日より後にしてください。"))


def _self_grant() -> AppError:
    return AppError("self_grant", _("自分自身（自分の部署を含む）にはラベルを付与・変更できません。"))


def _check_grant_manager(
    *, acting_user: User, member, department, labels: list[str] | None = None, widens: bool = True
) -> None:
    """Grants are managed by holders of access.manage over the whole tenant (one department's manager could
    otherwise grant tenant-wide labels), and nobody widens their own rights: no grant to (or removal from)
    their own employee number, and a widening grant to the department they are in (a grant to it is one to
    them) only with permissions their login's role already gives them for good (an org admin may give their
    department 名簿閲覧, not 産業医; rights from an expiring grant are not theirs to extend). ``widens``: False
    for an edit that only narrows the grant. Another administrator has to do the rest."""
    if not policy_can_tenant_wide(acting_user, Perm.ACCESS_MANAGE):
        raise Http404
    own = Member.objects.filter(user=acting_user).values_list("pk", "department_id").first()
    if own is None:
        return
    if member is not None and member.pk == own[0]:
        raise _self_grant()
    if department is None or department.pk != own[1] or labels is None or not widens:
        return
    given = {perm for code in labels if code in LABELS for perm in LABELS[code].permissions}
    if not given <= policy_role_permissions(acting_user):
        raise _self_grant()


def _widens(grant: LabelGrant, labels: list[str], scope_: str, valid_from, valid_until) -> bool:
    """Whether an edit gives more than ``grant`` did: a label, a wider scope, or a longer validity."""
    longer = (grant.valid_from is not None and (valid_from is None or valid_from < grant.valid_from)) or (
        grant.valid_until is not None and (valid_until is None or valid_until > grant.valid_until)
    )
    wider = Scope.ORDER.get(scope_, 99) > Scope.ORDER.get(grant.scope, 99)
    return bool(set(labels) - set(grant.labels)) or wider or longer


@transaction.atomic
def label_grant_create(
    *,
    office: Office,
    target_kind: str,
    target: str,
    labels: list[str],
    scope_: str,
    acting_user: User,
    valid_from=None,
    valid_until=None,
) -> LabelGrant:
    """Give ``labels`` with ``scope_`` to an employee number or a department of ``office``."""
    member, department = _resolve_target(office=office, target_kind=target_kind, target=target)
    _check_grant(
        labels=labels, scope_=scope_, valid_from=valid_from, valid_until=valid_until, member=member,
        department=department, acting_user=acting_user,
    )  # fmt: skip
    grant = LabelGrant(
        office=office, target_kind=target_kind, member=member, department=department, labels=sorted(set(labels)),
        scope=scope_, valid_from=valid_from, valid_until=valid_until, created_by=acting_user,
    )  # fmt: skip
    grant.save()
    audit.record(
        action="label.granted", target_type="label_grant", target_id=grant.pk,
        details={"new": _grant_snapshot(grant)}, actor=acting_user,
    )  # fmt: skip
    return grant


@transaction.atomic
def label_grant_update(
    *, grant: LabelGrant, labels: list[str], scope_: str, acting_user: User, valid_from=None, valid_until=None
) -> LabelGrant:
    """Change the labels, scope or validity of a grant (its target stays; make a new grant for another)."""
    widens = _widens(grant, labels, scope_, valid_from, valid_until)
    _check_grant(
        labels=labels, scope_=scope_, valid_from=valid_from, valid_until=valid_until, member=grant.member,
        department=grant.department, acting_user=acting_user, widens=widens,
    )  # fmt: skip
    old = _grant_snapshot(grant)
    grant.labels, grant.scope = sorted(set(labels)), scope_
    grant.valid_from, grant.valid_until = valid_from, valid_until
    grant.save()
    audit.record(
        action="label.grant_changed", target_type="label_grant", target_id=grant.pk,
        details={"old": old, "new": _grant_snapshot(grant)}, actor=acting_user,
    )  # fmt: skip
    return grant


@transaction.atomic
def label_grant_delete(*, grant: LabelGrant, acting_user: User) -> None:
    _check_grant_manager(acting_user=acting_user, member=grant.member, department=grant.department)
    old, pk = _grant_snapshot(grant), grant.pk
    grant.delete()
    audit.record(
        action="label.revoked", target_type="label_grant", target_id=pk, details={"old": old}, actor=acting_user
    )


# --- Teams ------------------------------------------------------------------------------------------


def _team_event(action: str, team: Team, acting_user: User, **details) -> None:
    audit.record(action=action, target_type="team", target_id=team.pk, details=details, actor=acting_user)


def _team_display_name(team: Team | None, display_name: str) -> str:
    """The name the person is shown by in the team: given (the team never sees their e-mail or roster
    name), at most 30 characters, and not one a live member or requester of the team already goes by."""
    display_name = unicodedata.normalize("NFKC", display_name).strip()
    if not display_name:
        raise AppError("invalid_display_name", _("チームでの表示名を入力してください。"))
    if len(display_name) > 30:
        raise AppError("invalid_display_name", _("チームでの表示名は30文字以内で入力してください。"))
    if team is not None:
        taken = TeamMembership.objects.filter(
            team=team, status__in=[TeamMembership.Status.PENDING, TeamMembership.Status.MEMBER]
        ).values_list("display_name", flat=True)
        if display_name.casefold() in {name.casefold() for name in taken}:
            raise AppError(
                "display_name_taken", _("この表示名はチームの中ですでに使われています。別の名前にしてください。")
            )
    return display_name


@transaction.atomic
def team_create(*, name: str, description: str, join_policy: str, display_name: str, acting_user: User) -> Team:
    """Anyone creates a team; the creator is its first member and administrator."""
    name = name.strip()
    if not name:
        raise AppError("invalid_name", _("チーム名を入力してください。"))
    display_name = _team_display_name(None, display_name)
    if Team.objects.filter(name=name, dissolved_at__isnull=True).exists():
        raise AppError("duplicate_team", _("同じ名前のチームがすでにあります。"))
    if join_policy not in Team.JoinPolicy.values:
        raise AppError("invalid_policy", _("参加方法を選んでください。"))
    team = Team(name=name, description=description.strip(), join_policy=join_policy, created_by=acting_user)
    team.save()
    TeamMembership(
        team=team, user=acting_user, display_name=display_name, status=TeamMembership.Status.MEMBER,
        is_team_admin=True, decided_at=timezone.now(), decided_by=acting_user,
    ).save()  # fmt: skip
    _team_event("team.created", team, acting_user, new={"join_policy": join_policy})
    return team


def _live_membership(team: Team, user: User) -> TeamMembership | None:
    return (
        TeamMembership.objects.select_for_update()
        .filter(team=team, user=user, status__in=[TeamMembership.Status.PENDING, TeamMembership.Status.MEMBER])
        .first()
    )


@transaction.atomic
def team_request_join(*, team: Team, display_name: str, acting_user: User) -> TeamMembership:
    """Join an open team at once, or ask to join an approval-only team, under ``display_name``."""
    if team.dissolved_at:
        raise AppError("team_dissolved", _("このチームは解散しました。"))
    if _live_membership(team, acting_user):
        raise AppError("already_requested", _("すでに参加中か、承認待ちです。"))
    Team.objects.select_for_update().filter(pk=team.pk).first()  # two joins under one name: one waits
    display_name = _team_display_name(team, display_name)
    status = TeamMembership.Status.MEMBER if team.join_policy == Team.JoinPolicy.OPEN else TeamMembership.Status.PENDING
    membership = TeamMembership(team=team, user=acting_user, display_name=display_name, status=status)
    if status == TeamMembership.Status.MEMBER:
        membership.decided_at = timezone.now()
    membership.save()
    _team_event("team.join_requested", team, acting_user, membership=membership.pk, new={"status": status})
    return membership


def team_can_decide(*, team: Team, user: User) -> bool:
    """The team's administrators (the creator is the first) approve or reject requests, while they are
    members: one who left has no say (and could otherwise let themselves back in)."""
    return TeamMembership.objects.filter(
        team=team, user=user, status=TeamMembership.Status.MEMBER, is_team_admin=True
    ).exists()


@transaction.atomic
def team_decide(*, membership: TeamMembership, approve: bool, acting_user: User) -> TeamMembership:
    if not team_can_decide(team=membership.team, user=acting_user):
        raise AppError("not_team_admin", _("このチームの参加申請を判断する権限がありません。"))
    if membership.status != TeamMembership.Status.PENDING:
        raise AppError("not_pending", _("この申請はすでに処理されています。"))
    old = membership.status
    membership.status = TeamMembership.Status.MEMBER if approve else TeamMembership.Status.REJECTED
    membership.decided_at, membership.decided_by = timezone.now(), acting_user
    membership.save()
    _team_event(
        "team.join_approved" if approve else "team.join_rejected", membership.team, acting_user,
        membership=membership.pk, old={"status": old}, new={"status": membership.status},
    )  # fmt: skip
    return membership


@transaction.atomic
def team_leave(*, team: Team, acting_user: User) -> None:
    membership = _live_membership(team, acting_user)
    if membership is None:
        raise AppError("not_member", _("このチームに参加していません。"))
    if membership.is_team_admin and membership.status == TeamMembership.Status.MEMBER:
        others = TeamMembership.objects.filter(team=team, status=TeamMembership.Status.MEMBER, is_team_admin=True)
        if not others.exclude(pk=membership.pk).exists():
            # Who can dissolve it is told what to do themself (the button is on the same page).
            may_dissolve = policy_can_tenant_wide(acting_user, Perm.TEAM_MANAGE)
            raise AppError(
                "last_team_admin",
                _(
                    "チームの管理者はあなただけのため、抜けられません。チームが不要になったら、このページの下から解散できます。"
                )
                if may_dissolve
                else _(
                    "チームの管理者はあなただけのため、抜けられません。チームが不要になったら、組織の管理者に解散を依頼してください。"
                ),
            )
    old = membership.status
    membership.status = TeamMembership.Status.LEFT
    membership.save()
    _team_event("team.left", team, acting_user, membership=membership.pk, old={"status": old}, new={"status": "left"})


@transaction.atomic
def team_dissolve(*, team: Team, acting_user: User) -> None:
    """The organisation admin (team.manage) dissolves a team; memberships end with it."""
    if not policy_can_tenant_wide(acting_user, Perm.TEAM_MANAGE):  # any team of the tenant: not from one department
        raise AppError("forbidden", _("チームを解散する権限がありません。"))
    if team.dissolved_at:
        raise AppError("team_dissolved", _("このチームは解散しました。"))
    team.dissolved_at = timezone.now()
    team.save(update_fields=["dissolved_at"])
    TeamMembership.objects.filter(
        team=team, status__in=[TeamMembership.Status.PENDING, TeamMembership.Status.MEMBER]
    ).update(status=TeamMembership.Status.LEFT)
    _team_event("team.dissolved", team, acting_user)


def login_lock_state(user: User) -> tuple[int, bool]:
    """(failed logins counted now, whether they lock the login): what the ops admin shows."""
    from axes.models import AccessAttempt

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = max(
        AccessAttempt.objects.filter(username=user.email, attempt_time__gte=since).values_list(
            "failures_since_start", flat=True
        ),
        default=0,
    )
    return failures, failures >= settings.AXES_FAILURE_LIMIT


def login_unlock_by_operator(*, user: User, acting_user: User) -> int:
    """Lift a login's lockout before its cool-off ends (the person called the help desk); recorded in the
    login's tenant chain. Returns the number of lockout records removed (0: nothing to lift, nothing recorded)."""
    from axes.utils import reset as axes_reset

    removed = axes_reset(username=user.email)
    if removed:
        audit.record(action="auth.lockout.cleared", tenant=user.tenant, actor=acting_user, target_type="user",
                     target_id=user.pk)  # fmt: skip
    return removed
