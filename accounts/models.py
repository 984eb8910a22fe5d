from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.labels import Scope
from healthapp.crypto.blind_index import indexer, insurance_card_index
from healthapp.crypto.fields import EncryptedDateField, EncryptedTextField
from tenants.models import (
    Department,
    Office,
    SameTenantForeignKey,
    SameTenantOneToOneField,
    Tenant,
    TenantScopedModel,
)


class Role(models.TextChoices):
    EMPLOYEE = "employee", _("従業員・加入者")
    PHYSICIAN = "physician", _("産業医")
    HEALTH_STAFF = "health_staff", _("保健師・衛生管理者")
    HR_ADMIN = "hr_admin", _("人事担当者")
    INSURER_ADMIN = "insurer_admin", _("健保担当者")
    ORG_ADMIN = "org_admin", _("組織管理者")
    OPERATOR = "operator", _("運用担当者")


PRIVILEGED_ROLES = frozenset(Role.values) - {Role.EMPLOYEE}
ADMIN_ROLES = frozenset({Role.HR_ADMIN, Role.INSURER_ADMIN, Role.ORG_ADMIN})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(role=Role.OPERATOR, tenant=None, is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login. The user table is the global login directory (it is read before any tenant is known),
    so it holds no personal data beyond the e-mail address; the person is the tenant's Member."""

    email = models.EmailField(_("メールアドレス"), unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    role = models.CharField(_("ロール"), max_length=20, choices=Role.choices, default=Role.EMPLOYEE)
    is_active = models.BooleanField(default=True)
    # Turned off because its roster entry was (an import, a 資格喪失日): the roster listing the person
    # again turns it back on. A login an operator turned off stays off whatever the roster says.
    disabled_by_roster = models.BooleanField(default=False, editable=False)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("ユーザー")
        verbose_name_plural = _("ユーザー")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=(models.Q(role="operator") & models.Q(tenant__isnull=True))
                | (~models.Q(role="operator") & models.Q(tenant__isnull=False)),
                name="user_operator_has_no_tenant",
            ),
        ]

    def __str__(self) -> str:
        # Shown by the ops admin (breadcrumbs, device owners, recent actions) and fit for logs: no e-mail.
        return gettext("ログイン #%(id)s") % {"id": self.pk}

    @property
    def is_privileged(self) -> bool:
        return self.role in PRIVILEGED_ROLES

    @property
    def is_tenant_admin(self) -> bool:
        return self.role in ADMIN_ROLES


class Member(TenantScopedModel):
    """A person on the tenant's roster (被保険者・被扶養者・従業員).

    Personal fields are encrypted at rest (healthapp.crypto.fields) and found through blind indexes
    (``*_index``); they never go to logs, audit events, __str__ or error messages. ``uid`` is the
    pseudonymous id other data (checkups, audit events) refers to.
    """

    class Relationship(models.TextChoices):
        SELF = "self", _("本人")
        FAMILY = "family", _("家族")

    class Sex(models.TextChoices):
        MALE = "male", _("男性")
        FEMALE = "female", _("女性")

    PERSONAL_FIELDS = (
        "employee_number", "name", "kana_name", "birth_date", "sex", "insurance_symbol", "insurance_number",
        "insurance_branch", "address", "phone", "email",
    )  # fmt: skip

    # No index of its own: the composite indexes below all start with the tenant, and every index costs
    # each of an import's inserts. On PostgreSQL each row proves its tenant, office and department with one
    # key check (tenants.keys), not three: the department key is (tenant, office, department) → the
    # department's (tenant, office, id), so a department is one of the member's office's and proves that
    # office; the office key is checked on rows without a department, and the key to the tenant on rows
    # without an office (an office's row proves its tenant).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", editable=False, db_index=False, db_constraint=False
    )
    tenant_key_unless = "office"
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = SameTenantOneToOneField(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="member")
    office = SameTenantForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    department = SameTenantForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="members", within="office"
    )
    relationship = models.CharField(_("続柄"), max_length=8, choices=Relationship.choices, default=Relationship.SELF)
    qualification_start = models.DateField(_("資格取得日"), null=True, blank=True)
    qualification_end = models.DateField(_("資格喪失日"), null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # The day the entry was turned off (a full import missing it, an edit) when no 資格喪失日 says when: the
    # years before it still count the person (特定健診の対象者); set and cleared by every save of is_active.
    inactive_since = models.DateField(null=True, blank=True, editable=False)

    employee_number = EncryptedTextField(_("社員番号"), null=True, blank=True)
    name = EncryptedTextField(_("氏名"))
    kana_name = EncryptedTextField(_("フリガナ"), null=True, default="", blank=True)
    birth_date = EncryptedDateField(_("生年月日"), null=True, blank=True)
    sex = EncryptedTextField(_("性別"), choices=Sex.choices, null=True, default="", blank=True)
    insurance_symbol = EncryptedTextField(_("保険証の記号"), null=True, default="", blank=True)
    insurance_number = EncryptedTextField(_("保険証の番号"), null=True, default="", blank=True)
    # 枝番 (two digits, on cards since 2021): tells apart people who share the card's other data, such
    # as twins of one sex under one insured person; not part of the card index, which self-registration
    # computes from what people remember of their card.
    insurance_branch = EncryptedTextField(_("枝番"), null=True, default="", blank=True)
    address = EncryptedTextField(_("住所"), null=True, default="", blank=True)
    phone = EncryptedTextField(_("電話番号"), null=True, default="", blank=True)
    email = EncryptedTextField(_("メールアドレス"), null=True, default="", blank=True)  # the roster's, not the login

    employee_number_index = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    name_index = models.CharField(max_length=64, blank=True, editable=False)
    email_index = models.CharField(max_length=64, blank=True, editable=False)
    insurance_card_index = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    # Keyed digest (HMAC under the tenant's index key) of the roster file row that last wrote this entry,
    # with that file's column set and blank rule: a re-import finds such a row unchanged without decrypting.
    # Only the import sets it; any other save of a compared field clears it (``before_save``).
    roster_digest = models.BinaryField(max_length=16, null=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("名簿")
        verbose_name_plural = _("名簿")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_number_index"],
                condition=models.Q(employee_number_index__isnull=False),
                name="member_unique_employee_number",
            ),
            # A department lies within an office (and the department key checks it against the office).
            models.CheckConstraint(
                condition=models.Q(department__isnull=True) | models.Q(office__isnull=False),
                name="member_department_needs_office",
            ),
        ]
        # Office and department have the foreign keys' own indexes: an office or department belongs to
        # one tenant, so a (tenant, office) index would find the same rows at the cost of one more index
        # write per inserted member. The card index holds only entries that have one: a company roster has
        # no insurance cards, and an index entry for each of its NULLs served no lookup and cost every insert.
        indexes = [
            models.Index(fields=["tenant", "name_index"]),
            models.Index(
                fields=["tenant", "insurance_card_index"],
                condition=models.Q(insurance_card_index__isnull=False),
                name="member_insurance_card",
            ),
        ]

    def __str__(self) -> str:
        return gettext("名簿 #%(id)s") % {"id": self.pk}

    def __repr__(self) -> str:
        return f"<Member #{self.pk} tenant={self.tenant_id}>"

    _INDEXED = frozenset(
        {"employee_number", "name", "email", "insurance_symbol", "insurance_number", "relationship", "sex",
         "birth_date"}
    )  # fmt: skip

    # What a roster row sets and the import compares through ``roster_digest``.
    ROSTER_COMPARED = frozenset({*PERSONAL_FIELDS, "relationship", "qualification_start", "qualification_end"})

    def before_save(self, *, update_fields=None) -> tuple[str, ...]:
        cleared: tuple[str, ...] = ()
        fields = set(update_fields or ())
        if update_fields is None or "is_active" in fields:
            since = None if self.is_active else self.inactive_since or timezone.localdate()
            if since != self.inactive_since:
                self.inactive_since, cleared = since, ("inactive_since",)
        if update_fields is None or ("roster_digest" not in fields and self.ROSTER_COMPARED & fields):
            self.roster_digest, cleared = None, (*cleared, "roster_digest")  # changed outside the import
        if update_fields is not None and not self._INDEXED & set(update_fields):
            return cleared
        derived = member_indexes(self.tenant_id, self.__dict__ | {f: getattr(self, f) for f in self._INDEXED})
        self.__dict__.update(derived)
        return (*derived, *cleared)


def member_indexes(tenant_id: int, values: dict, *, known: dict[str, str] | None = None) -> dict[str, str | None]:
    """The blind indexes of a roster entry from its plaintext attributes (a saved instance or the
    roster import's new rows, which are written without model instances); ``known``: indexes the
    caller has computed already (the import's matching key)."""
    return MemberIndexer(tenant_id)(values, known=known)


class MemberIndexer:
    """``member_indexes`` for many roster entries of one tenant (an import's rows): each purpose's key
    is looked up once, not once per value. Lives for one batch of work."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.employee_number = indexer(tenant_id, "employee-number")
        self.name = indexer(tenant_id, "name", kana=True)
        self.email = indexer(tenant_id, "email")
        self.card = indexer(tenant_id, "insurance-card")

    def __call__(self, values: dict, *, known: dict[str, str] | None = None) -> dict[str, str | None]:
        known = known or {}
        get = values.get
        employee_number, name, email = get("employee_number"), get("name"), get("email")
        symbol, number, sex, birth = get("insurance_symbol"), get("insurance_number"), get("sex"), get("birth_date")
        indexes = {
            "employee_number_index": self.employee_number(employee_number)
            if employee_number and "employee_number_index" not in known
            else None,
            "name_index": self.name(name) if name else "",
            "email_index": self.email(email) if email else "",
            "insurance_card_index": (
                insurance_card_index(
                    self.tenant_id,
                    symbol=symbol,
                    number=number,
                    relationship=get("relationship") or Member.Relationship.SELF,
                    sex=sex,
                    birth_year_month=f"{birth.year:04d}-{birth.month:02d}",
                    index=self.card,
                )
                if symbol and number and sex and birth and "insurance_card_index" not in known
                else None
            ),
        }
        indexes.update(known)
        return indexes


class LabelGrant(TenantScopedModel):
    """権限ラベルの付与: labels with a scope for one employee number or one department, entered under an
    office exactly as the customer's admin does it (Settings → Access rights → office → entry).

    A department grant applies to whoever is in the department when rights are evaluated, so it follows
    people as the roster changes.
    """

    class Target(models.TextChoices):
        EMPLOYEE = "employee", _("社員番号")
        DEPARTMENT = "department", _("部署")

    office = SameTenantForeignKey(Office, on_delete=models.PROTECT, related_name="label_grants")
    target_kind = models.CharField(_("付与対象"), max_length=12, choices=Target.choices)
    member = SameTenantForeignKey(Member, on_delete=models.CASCADE, null=True, blank=True, related_name="label_grants")
    department = SameTenantForeignKey(
        Department, on_delete=models.CASCADE, null=True, blank=True, related_name="label_grants"
    )
    labels = models.JSONField(_("ラベル"), default=list)
    scope = models.CharField(_("範囲"), max_length=12, choices=Scope.CHOICES, default=Scope.SELF)
    valid_from = models.DateField(_("有効開始日"), null=True, blank=True)
    valid_until = models.DateField(_("有効終了日"), null=True, blank=True)
    created_by = SameTenantForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("権限ラベルの付与")
        verbose_name_plural = _("権限ラベルの付与")
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(target_kind="employee", member__isnull=False, department__isnull=True))
                | (models.Q(target_kind="department", department__isnull=False, member__isnull=True)),
                name="labelgrant_one_target",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_from__isnull=True)
                | models.Q(valid_until__gte=models.F("valid_from")),
                name="labelgrant_valid_period",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "office"])]

    def __str__(self) -> str:
        return f"LabelGrant #{self.pk}"

    def is_valid_on(self, day) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class Team(TenantScopedModel):
    """チーム: anyone creates one; others ask to join; the creator and team admins decide."""

    class JoinPolicy(models.TextChoices):
        OPEN = "open", _("誰でも参加できる")
        APPROVAL = "approval", _("承認制")

    name = models.CharField(_("チーム名"), max_length=100)
    description = models.TextField(_("説明"), blank=True, max_length=1000)
    join_policy = models.CharField(
        _("参加方法"), max_length=10, choices=JoinPolicy.choices, default=JoinPolicy.APPROVAL
    )
    created_by = SameTenantForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    dissolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("チーム")
        verbose_name_plural = _("チーム")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], condition=models.Q(dissolved_at__isnull=True), name="team_unique_live_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(TenantScopedModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("承認待ち")
        MEMBER = "member", _("参加中")
        REJECTED = "rejected", _("見送り")
        LEFT = "left", _("退会")

    team = SameTenantForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = SameTenantForeignKey(User, on_delete=models.CASCADE, related_name="team_memberships")
    # What the team sees of the person: a name they choose, never their e-mail or roster name (a team's
    # theme, such as a diet class, can say something about the health of those in it).
    display_name = models.CharField(_("チームでの表示名"), max_length=30, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    is_team_admin = models.BooleanField(default=False)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = SameTenantForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user"],
                condition=models.Q(status__in=["pending", "member"]),
                name="teammembership_one_live",
            )
        ]

    def __str__(self) -> str:
        return f"TeamMembership #{self.pk}"
