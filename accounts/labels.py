"""The system catalogue of permissions and permission labels (権限ラベル).

A label bundles permissions; a LabelGrant gives labels with a scope to an employee number or a
department. The catalogue is code, versioned with the application: customers choose among labels,
they do not invent permissions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


class Perm:
    ROSTER_MANAGE = "roster.manage"
    ACCESS_MANAGE = "access.manage"
    MEMBER_VIEW = "member.view"
    CHECKUP_VIEW = "checkup.view"
    CHECKUP_JUDGE = "checkup.judge"
    CHECKUP_VIEW_CONCLUSION = "checkup.view_conclusion"
    GUIDANCE_RECORD = "guidance.record"  # 特定保健指導の実施記録 (初回面接, 実績評価)
    LIFELOG_VIEW = "lifelog.view"
    POINTS_MANAGE = "points.manage"
    NOTICE_MANAGE = "notice.manage"
    AUDIT_VIEW = "audit.view"
    TEAM_MANAGE = "team.manage"


ALL_PERMISSIONS = frozenset(v for k, v in vars(Perm).items() if k.isupper())


class Scope:
    SELF = "self"
    DEPARTMENT = "department"
    OFFICE = "office"
    TENANT = "tenant"

    CHOICES = [
        (SELF, _("本人のみ")),
        (DEPARTMENT, _("所属部署")),
        (OFFICE, _("事業所")),
        (TENANT, _("全体")),
    ]
    ORDER = {SELF: 0, DEPARTMENT: 1, OFFICE: 2, TENANT: 3}


@dataclass(frozen=True)
class Label:
    code: str
    name: str
    permissions: frozenset[str]


LABELS: dict[str, Label] = {
    label.code: label
    for label in [
        Label(
            "org_admin",
            _("組織管理者"),
            frozenset(
                {
                    Perm.ACCESS_MANAGE,
                    Perm.ROSTER_MANAGE,
                    Perm.MEMBER_VIEW,
                    Perm.CHECKUP_VIEW_CONCLUSION,
                    Perm.AUDIT_VIEW,
                    Perm.NOTICE_MANAGE,
                    Perm.TEAM_MANAGE,
                    Perm.POINTS_MANAGE,
                }
            ),
        ),
        # HR may read the organisation's logs: Ailes+ discloses them to HR on request (MISSION G1).
        Label(
            "hr_staff",
            _("人事担当"),
            frozenset({Perm.ROSTER_MANAGE, Perm.MEMBER_VIEW, Perm.CHECKUP_VIEW_CONCLUSION, Perm.AUDIT_VIEW}),
        ),
        Label(
            "physician",
            _("産業医"),
            frozenset(
                {Perm.MEMBER_VIEW, Perm.CHECKUP_VIEW, Perm.CHECKUP_JUDGE, Perm.GUIDANCE_RECORD, Perm.LIFELOG_VIEW}
            ),
        ),
        Label(
            "health_staff",
            _("保健師・衛生管理者"),
            frozenset({Perm.MEMBER_VIEW, Perm.CHECKUP_VIEW, Perm.GUIDANCE_RECORD, Perm.LIFELOG_VIEW}),
        ),
        Label("manager", _("所属長"), frozenset({Perm.MEMBER_VIEW, Perm.CHECKUP_VIEW_CONCLUSION})),
        Label("roster_viewer", _("名簿閲覧"), frozenset({Perm.MEMBER_VIEW})),
        Label("auditor", _("ログ監査"), frozenset({Perm.AUDIT_VIEW})),
        Label("points_admin", _("ポイント管理"), frozenset({Perm.POINTS_MANAGE})),
        Label("notice_editor", _("お知らせ管理"), frozenset({Perm.NOTICE_MANAGE})),
        Label("team_admin", _("チーム管理"), frozenset({Perm.TEAM_MANAGE})),
    ]
}

# Permissions whose pages and effects reach the whole tenant (grants and the access review, the audit log,
# roster and checkup imports, dissolving teams): every use asks policy.can_tenant_wide, so they work only
# in a grant with scope 全体.
TENANT_WIDE_ONLY: dict[str, str] = {
    Perm.ACCESS_MANAGE: _("権限の管理"),
    Perm.AUDIT_VIEW: _("監査ログの閲覧"),
    Perm.ROSTER_MANAGE: _("名簿・健診結果の取り込み"),
    Perm.TEAM_MANAGE: _("チームの解散"),
}
# Permissions of features not built yet: no page asks for them, a grant of them alone would do nothing.
NOT_YET_USED = frozenset({Perm.POINTS_MANAGE, Perm.NOTICE_MANAGE})


def working_permissions(code: str, scope: str) -> frozenset[str]:
    """What label ``code`` lets its holder do when granted with ``scope``."""
    permissions = LABELS[code].permissions - NOT_YET_USED
    return permissions if scope == Scope.TENANT else permissions - TENANT_WIDE_ONLY.keys()


def idle_permissions(codes: list[str], scope: str) -> list[str]:
    """The tenant-wide permissions, in words, that ``codes`` hold but ``scope`` leaves idle."""
    if scope == Scope.TENANT:
        return []
    held = {perm for code in codes if code in LABELS for perm in LABELS[code].permissions}
    return [str(name) for perm, name in TENANT_WIDE_ONLY.items() if perm in held]


LABEL_CHOICES = [(code, label.name) for code, label in LABELS.items() if label.permissions - NOT_YET_USED]

# The one built-in grant: an org_admin login holds the organisation-admin label for the whole tenant,
# so a new tenant's first administrator can grant everything else. Every other right is a LabelGrant.
ROLE_LABELS: dict[str, tuple[str, str]] = {"org_admin": ("org_admin", Scope.TENANT)}
